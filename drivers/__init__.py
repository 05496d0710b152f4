"""Hardware drivers for lockerd: codecs, links, boards and their simulator twins.

Nothing in this package imports :mod:`lockerd`.
"""
