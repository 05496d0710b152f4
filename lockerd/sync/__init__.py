"""Back-office sync v1: push the journal, pull commands, apply each exactly once."""
