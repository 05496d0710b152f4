"""Locks and door switches wired straight to the GPIO header, through gpiozero."""
