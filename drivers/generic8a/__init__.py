"""The generic 0x8A/0x80 lock boards with an XOR (BCC) checksum, sold under many names."""
