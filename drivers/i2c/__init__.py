"""Door sensors on I2C GPIO expanders (MCP23017, PCF8574) through smbus2."""
