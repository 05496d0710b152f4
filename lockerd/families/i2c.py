"""I2C expanders reading door switches (``i2c``: MCP23017, PCF8574), through smbus2:
config and factory.

The driver is ``drivers/i2c`` (inputs, and a register-model bus as the twin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lockerd.config._typed import opt
from lockerd.families.base import BoardChecks, Family

if TYPE_CHECKING:
    from drivers.i2c.sim import SimI2cBus
    from drivers.simworld import SimDoor
    from lockerd.config.schema import BusConfig, Config
    from lockerd.hardware import Hardware


@dataclass(frozen=True)
class I2cBoardConfig:
    name: str = opt(doc="board name compartments refer to as their sensor_board")
    bus: str = opt(doc="the i2c bus")
    chip: Literal["mcp23017", "pcf8574"] = opt(doc="the expander")
    address: int = opt(
        doc="7-bit I2C address (0x20..0x27; a PCF8574A 0x38..0x3F)", min=0x20, max=0x3F
    )
    closed_bit: int = opt(0, doc="input level that means the door is shut", min=0, max=1)
    pull_up: bool = opt(True, doc="mcp23017: enable the 100 kOhm pull-ups on the inputs")
    item_bit: int = opt(
        1, doc="item-sensor input level that means something is inside", min=0, max=1
    )
    channels: ClassVar[int] = 0
    items: ClassVar[bool] = True
    has_feedback: ClassVar[bool] = False
    door_from_hook: ClassVar[bool] = False
    locked_bit: ClassVar[int] = 1
    power_group: ClassVar[str] = ""

    @property
    def sensor_channels(self) -> int:
        return 16 if self.chip == "mcp23017" else 8


def _check(board: I2cBoardConfig, path: str, checks: BoardChecks) -> None:
    """An address of its chip, no other board's on the bus (an expander has no power group)."""
    if not checks.sound(path, "name", "bus", "chip", "address"):
        return
    checks.address(board, path, f"0x{board.address:02X}")
    ranges = [range(0x20, 0x28)] + ([range(0x38, 0x40)] if board.chip == "pcf8574" else [])
    if not any(board.address in r for r in ranges):
        checks.problems.add(
            f"{path}.address", f"0x{board.address:02X} is not a {board.chip} address"
        )


def _refuse_sensor(board: I2cBoardConfig, channel: int) -> str | None:
    if board.chip == "mcp23017" and channel in (8, 16):
        return (
            "GPA7/GPB7 are output-only on the MCP23017 (Microchip erratum);"
            " wire door switches to GPx0..GPx6"
        )
    return None


def _describe(board: I2cBoardConfig, config: Config) -> str:
    count = sum(1 for c in config.compartment if c.door_board == board.name)
    return (
        f"{board.chip} at 0x{board.address:02X},"
        f" door sensors of {count} compartments; closed={board.closed_bit}"
    )


def _open(hardware: Hardware, bus: BusConfig, boards: list[I2cBoardConfig]) -> None:
    from smbus2 import SMBus  # only when used

    from drivers.errors import LinkError
    from drivers.i2c.board import Mcp23017Inputs, Pcf8574Inputs

    smbus: Any
    if bus.simulator:
        smbus = hardware.i2c_sims[bus.name] = _twin(hardware, boards)
    else:
        try:
            smbus = SMBus(bus.port)
        except OSError as exc:
            raise LinkError(f"cannot open I2C bus {bus.port}: {exc.strerror or exc}") from exc
    hardware.links[bus.name] = smbus
    hardware.backend[bus.name] = f"i2c on {bus.port or 'simulator'}"
    for board in boards:
        hardware.drivers[board.name] = (
            Mcp23017Inputs(smbus, board.address, pull_up=board.pull_up)
            if board.chip == "mcp23017"
            else Pcf8574Inputs(smbus, board.address)
        )


def _twin(hardware: Hardware, boards: list[I2cBoardConfig]) -> SimI2cBus:
    """The expanders' registers, each input wired to the simulated door it senses."""
    from drivers.i2c.sim import SimExpander, SimI2cBus, SimMcp23017, SimPcf8574

    chips: dict[str, SimExpander] = {
        b.name: (SimMcp23017 if b.chip == "mcp23017" else SimPcf8574)(b.address) for b in boards
    }
    for comp in hardware.config.compartment:
        door = hardware.sim_door(comp)
        if comp.door_board in chips and door is not None:
            chips[comp.door_board].attach(comp.sensor_channel, door)
    return SimI2cBus(list(chips.values()))


def _attach_item(hardware: Hardware, board: I2cBoardConfig, channel: int, door: SimDoor) -> None:
    expander = hardware.i2c_sims.get(board.bus)
    if expander is not None:
        chip = expander.devices[board.address]
        chip.item_level = board.item_bit
        chip.attach_item(channel, door)


I2C = Family(
    protocol="i2c",
    board=I2cBoardConfig,
    about="An I2C expander reading door switches for compartments that name it as sensor_board.",
    wire="i2c",
    check=_check,
    describe=_describe,
    open=_open,
    channel_keys=("chip",),
    attach_item=_attach_item,
    refuse_sensor=_refuse_sensor,
    senses_only=True,
)
