"""Door-sensor inputs on I2C expanders; they drive no locks.

An I/O error (errno 121, no ACK: an unplugged or dead expander) raises
:class:`~drivers.errors.BoardTimeout`, so the bank treats the board as silent
and its doors as unknown: never as open. Opening does no I/O (a missing
expander must not stop the daemon); the chip is set up on the first read and
again after any error, since a replugged chip is back at its power-on
defaults (an MCP23017 then has no pull-ups). Inputs are raw pin levels (a switch
to ground on a pulled-up input reads 0 when the door is shut); the bank
applies the configured polarity.
"""

from __future__ import annotations

from typing import Any, Protocol

from drivers.base import Inputs
from drivers.errors import BoardTimeout, ChannelError

# MCP23017 registers with IOCON.BANK = 0 (the power-on default).
IODIRA, IODIRB = 0x00, 0x01
IPOLA, IPOLB = 0x02, 0x03
GPPUA, GPPUB = 0x0C, 0x0D
GPIOA = 0x12
OLATA, OLATB = 0x14, 0x15
#: GPA7 and GPB7 are output-only (Microchip DS20001952 rev D): inputs are
#: never mapped there; they are set as outputs driven low.
INPUT_MASK = 0x7F


class SMBusLike(Protocol):
    def read_byte(self, address: int) -> int: ...

    def write_byte(self, address: int, value: int) -> None: ...

    def read_byte_data(self, address: int, register: int) -> int: ...

    def write_byte_data(self, address: int, register: int, value: int) -> None: ...

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]: ...


def _io(address: int, call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except OSError as exc:
        raise BoardTimeout(f"I2C 0x{address:02X}: {exc.strerror or exc}") from exc


class Mcp23017Inputs:
    """Sixteen inputs (channels 1..8 = GPA0..7, 9..16 = GPB0..7; 8 and 16 unusable)."""

    channels = 0
    sensor_channels = 16

    def __init__(self, bus: SMBusLike, address: int, *, pull_up: bool = True):
        self.address = address
        self._bus = bus
        self._pull = INPUT_MASK if pull_up else 0
        self._ready = False

    max_pulse_ms = 0  # it drives no lock

    def pulse(self, channel: int, milliseconds: int) -> None:
        raise ChannelError(f"MCP23017 at 0x{self.address:02X} reads sensors; it drives no lock")

    def release_now(self) -> None:
        """Nothing to release: it drives no lock."""

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        try:
            if not self._ready:
                self._set_up()
            port_a, port_b = _io(
                self.address, self._bus.read_i2c_block_data, self.address, GPIOA, 2
            )
        except BoardTimeout:
            self._ready = False
            raise
        return Inputs(locks=0, sensors=(port_a & INPUT_MASK) | (port_b & INPUT_MASK) << 8)

    def _set_up(self) -> None:
        for register, value in (
            (OLATA, 0),
            (OLATB, 0),
            (IODIRA, INPUT_MASK),
            (IODIRB, INPUT_MASK),
            (IPOLA, 0),
            (IPOLB, 0),
            (GPPUA, self._pull),
            (GPPUB, self._pull),
        ):
            _io(self.address, self._bus.write_byte_data, self.address, register, value)
        self._ready = True

    def close(self) -> None:
        """Nothing is driven but the two output-only pins, held low."""


class Pcf8574Inputs:
    """Eight quasi-bidirectional pins, all kept high (inputs): channels 1..8 = P0..P7."""

    channels = 0
    sensor_channels = 8

    def __init__(self, bus: SMBusLike, address: int):
        self.address = address
        self._bus = bus
        self._ready = False

    max_pulse_ms = 0  # it drives no lock

    def pulse(self, channel: int, milliseconds: int) -> None:
        raise ChannelError(f"PCF8574 at 0x{self.address:02X} reads sensors; it drives no lock")

    def release_now(self) -> None:
        """Nothing to release: it drives no lock."""

    def read_inputs(self, *, probe: float | None = None) -> Inputs:
        try:
            if not self._ready:
                # Every pin high: a 0 written to a pin with a switch on it would short it.
                _io(self.address, self._bus.write_byte, self.address, 0xFF)
                self._ready = True
            return Inputs(locks=0, sensors=_io(self.address, self._bus.read_byte, self.address))
        except BoardTimeout:
            self._ready = False
            raise

    def close(self) -> None:
        """Nothing to release."""
