"""A register-model I2C bus with simulated expanders, for the I2C door sensors' twin.

:class:`SimI2cBus` has the smbus2 methods the drivers use. An MCP23017 keeps
its register file (BANK = 0): GPIO reads each pin from what drives it: a
door's switch to ground (reads 0 when the door is shut), an item sensor's
push-pull output (``item_level`` while it sees something), else the pull-up
(1) or nothing (a floating input reads 0 here), then IPOL. A PCF8574 reads
each pin as the written latch AND the switch: writing 0 to an input pin
forces it low, as on the chip. A device can be made to NACK (OSError 121).

Not modelled: interrupts (INTF/INTCAP, INT pins), IOCON.BANK = 1, SEQOP,
bus speed, clock stretching, and the PCF8575.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from drivers.simworld import SimDoor


@dataclass
class SimExpander:
    address: int
    #: The device does not ACK (unplugged, dead): every access raises OSError 121.
    nack: bool = False
    #: Input channel (1-based) -> the door whose switch is wired to it.
    doors: dict[int, SimDoor] = field(default_factory=dict)
    #: Input channel (1-based) -> the compartment whose item sensor is wired to it.
    items: dict[int, SimDoor] = field(default_factory=dict)
    #: The level an item sensor drives while it sees something (its other level otherwise).
    item_level: int = 1

    def attach(self, channel: int, door: SimDoor) -> None:
        self.doors[channel] = door

    def attach_item(self, channel: int, door: SimDoor) -> None:
        self.items[channel] = door

    def switch_low(self, channel: int) -> bool:
        """True when a shut door's switch, or an item sensor, pulls this pin to ground."""
        door = self.doors.get(channel)
        if door is not None:
            return not door.is_open
        watched = self.items.get(channel)
        return watched is not None and watched.item != bool(self.item_level)

    def driven_high(self, channel: int) -> bool:
        """True when an item sensor drives this pin high."""
        watched = self.items.get(channel)
        return watched is not None and watched.item == bool(self.item_level)


@dataclass
class SimMcp23017(SimExpander):
    registers: list[int] = field(default_factory=lambda: [0xFF, 0xFF] + [0] * 20)

    def read(self, register: int) -> int:
        if register in (0x12, 0x13):
            return self._pins(register - 0x12)
        return self.registers[register]

    def write(self, register: int, value: int) -> None:
        if register in (0x12, 0x13):
            register += 2  # a GPIO write goes to OLAT
        self.registers[register] = value & 0xFF

    def _pins(self, port: int) -> int:
        iodir, ipol = self.registers[port], self.registers[2 + port]
        pull_up, latch = self.registers[0x0C + port], self.registers[0x14 + port]
        value = 0
        for bit in range(8):
            mask = 1 << bit
            if not iodir & mask:
                level = bool(latch & mask)
            elif self.switch_low(port * 8 + bit + 1):
                level = False
            elif self.driven_high(port * 8 + bit + 1):
                level = True
            else:
                level = bool(pull_up & mask)
            value |= mask if level ^ bool(ipol & mask) else 0
        return value


@dataclass
class SimPcf8574(SimExpander):
    latch: int = 0xFF

    def pins(self) -> int:
        value = 0
        for bit in range(8):
            if self.latch & (1 << bit) and not self.switch_low(bit + 1):
                value |= 1 << bit
        return value


class SimI2cBus:
    """The smbus2 calls the drivers make, answered by simulated devices."""

    def __init__(self, devices: list[SimExpander]):
        self.devices = {d.address: d for d in devices}

    def _device(self, address: int) -> SimExpander:
        device = self.devices.get(address)
        if device is None or device.nack:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return device

    def read_byte(self, address: int) -> int:
        device = self._device(address)
        assert isinstance(device, SimPcf8574)
        return device.pins()

    def write_byte(self, address: int, value: int) -> None:
        device = self._device(address)
        assert isinstance(device, SimPcf8574)
        device.latch = value & 0xFF

    def read_byte_data(self, address: int, register: int) -> int:
        device = self._device(address)
        assert isinstance(device, SimMcp23017)
        return device.read(register)

    def write_byte_data(self, address: int, register: int, value: int) -> None:
        device = self._device(address)
        assert isinstance(device, SimMcp23017)
        device.write(register, value)

    def read_i2c_block_data(self, address: int, register: int, length: int) -> list[int]:
        device = self._device(address)
        assert isinstance(device, SimMcp23017)
        return [device.read(register + offset) for offset in range(length)]

    def close(self) -> None:
        """Nothing to release."""
