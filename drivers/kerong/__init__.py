"""Kerong lock-control boards (KR-CU16): codec, board meaning and simulator twin."""
