"""Modbus RTU relay boards (Waveshare and clones) through pymodbus, pulsed by the board."""
