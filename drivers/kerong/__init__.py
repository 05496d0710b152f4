"""Kerong lock-control boards (KR-CU16, KR-CU48): codecs, board meaning and simulator twins."""
