"""The daemon's exception tree; each class also inherits the matching builtin."""

from __future__ import annotations


class LockerError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(LockerError, ValueError):
    """The config file is invalid; the message names the file, the key path and the problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreError(LockerError, RuntimeError):
    """The database is not in a state the daemon can safely run on."""


class DeviceKeyError(LockerError, RuntimeError):
    """The device key file is missing, unreadable or does not match the database."""


class FlowError(LockerError):
    """A request a flow refuses; ``code`` is a stable identifier the kiosk translates.

    ``details`` are extra data (for example ``attempts_left`` or ``retry_after``).
    What a refusal looks like on the wire is each face's own business, decided
    at one place per face: the kiosk API's HTTP status (``kiosk/guard.py``),
    the control socket's reply (``control.py``), sync's rejection reason.
    """

    def __init__(self, code: str, message: str, **details: object):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class BadRequest(FlowError, ValueError):
    """Malformed input (a scan, a code, a JSON body); nothing was changed."""


class NotFound(FlowError, LookupError):
    """The named drop-off, pickup, session or compartment does not exist."""


class Unauthorized(FlowError, PermissionError):
    """The request needs a courier session with the right to do it."""


class Refused(FlowError):
    """A valid back-office command this locker cannot apply now; the reason goes back."""

    def __init__(self, reason: str):
        super().__init__("command_refused", reason)
