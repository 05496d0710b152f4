"""Exceptions raised by drivers; each also inherits the matching builtin."""


class DriverError(Exception):
    """Base of every error a driver raises."""


class BoardTimeout(DriverError, TimeoutError):
    """A board did not answer a request within the timeout."""


class FrameError(DriverError, ValueError):
    """Bytes that are not a valid frame: bad checksum, wrong length, unknown command."""


class LinkError(DriverError, OSError):
    """The transport (serial port, pty, socket) could not be opened or failed."""


class ChannelError(DriverError, ValueError):
    """A lock or sensor channel outside what the board has."""


class PulseRefused(DriverError, ValueError):
    """A pulse longer than the board was opened to allow: never sent."""
