"""I2C expanders on the register-model bus."""

import pytest

from drivers.errors import BoardTimeout, ChannelError
from drivers.i2c.board import Mcp23017Inputs, Pcf8574Inputs
from drivers.i2c.sim import SimI2cBus, SimMcp23017, SimPcf8574
from drivers.simworld import SimDoor


def shut_door() -> SimDoor:
    return SimDoor()


def test_mcp23017_setup_and_reads() -> None:
    chip = SimMcp23017(0x20)
    doors = {1: SimDoor(), 9: SimDoor(), 15: SimDoor()}
    for channel, door in doors.items():
        chip.attach(channel, door)
    bus = SimI2cBus([chip])
    board = Mcp23017Inputs(bus, 0x20)
    board.read_inputs()
    assert chip.registers[0x00] == chip.registers[0x01] == 0x7F, "GPx7 are outputs"
    assert chip.registers[0x0C] == chip.registers[0x0D] == 0x7F, "pull-ups on the inputs"
    sensors = board.read_inputs().sensors
    assert sensors & 1 == 0 and (sensors >> 8) & 1 == 0 and (sensors >> 14) & 1 == 0
    assert (sensors >> 1) & 1 == 1, "an unwired input floats high on its pull-up"
    assert sensors & (1 << 7) == 0 and sensors & (1 << 15) == 0, "GPx7 never read"
    doors[9].is_open = True
    assert (board.read_inputs().sensors >> 8) & 1 == 1


def test_pcf8574_inputs_stay_high() -> None:
    chip = SimPcf8574(0x38)
    chip.attach(3, SimDoor())
    chip.latch = 0x00
    board = Pcf8574Inputs(SimI2cBus([chip]), 0x38)
    assert board.read_inputs().sensors == 0xFF & ~0b100
    assert chip.latch == 0xFF
    chip.doors[3].is_open = True
    assert board.read_inputs().sensors == 0xFF


@pytest.mark.parametrize("kind", [Mcp23017Inputs, Pcf8574Inputs])
def test_a_silent_expander_is_unknown_not_open(kind) -> None:
    chip = (SimMcp23017 if kind is Mcp23017Inputs else SimPcf8574)(0x21)
    bus = SimI2cBus([chip])
    board = kind(bus, 0x21)
    board.read_inputs()
    chip.nack = True
    with pytest.raises(BoardTimeout, match="I2C 0x21: Remote I/O error"):
        board.read_inputs()


def test_an_absent_expander_is_silent_not_fatal() -> None:
    board = Mcp23017Inputs(SimI2cBus([]), 0x22)  # opening does no I/O
    with pytest.raises(BoardTimeout, match="I2C 0x22"):
        board.read_inputs()


def test_a_replugged_mcp23017_is_set_up_again() -> None:
    chip = SimMcp23017(0x20)
    chip.attach(2, SimDoor())
    board = Mcp23017Inputs(SimI2cBus([chip]), 0x20)
    board.read_inputs()
    chip.nack = True
    with pytest.raises(BoardTimeout):
        board.read_inputs()
    chip.nack = False
    chip.registers = SimMcp23017(0x20).registers  # power-on defaults: no pull-ups
    assert (board.read_inputs().sensors >> 2) & 1 == 1, "pull-ups are back on"


def test_expanders_drive_no_locks() -> None:
    board = Pcf8574Inputs(SimI2cBus([SimPcf8574(0x20)]), 0x20)
    with pytest.raises(ChannelError, match="drives no lock"):
        board.pulse(1, 100)


def test_a_missing_i2c_bus_stops_the_start_with_its_reason(tmp_path) -> None:
    import dataclasses

    from drivers.errors import LinkError
    from lockerd import hardware
    from tests.rig import bank_config

    config = bank_config(tmp_path, family="gpio+mcp23017")
    buses = tuple(
        dataclasses.replace(b, simulator=False, port="/dev/i2c-99") if b.protocol == "i2c" else b
        for b in config.bus
    )
    with pytest.raises(LinkError, match="cannot open I2C bus /dev/i2c-99"):
        hardware.build(dataclasses.replace(config, bus=buses))


def test_door_inputs_never_on_gpa7_or_gpb7(tmp_path) -> None:
    from lockerd.config import ConfigError
    from tests import families

    data = families.bank(tmp_path)
    families.add_expander(data, "mcp23017")
    data["compartment"][4].update(sensor=8, sensor_board="doors")  # L1's door on GPA7
    with pytest.raises(ConfigError, match="GPA7/GPB7 are output-only"):
        families.config(data, tmp_path)
