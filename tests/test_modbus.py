"""Modbus RTU relay boards: the frames from hardware.md, and the board on its twin."""

import pytest

from drivers.errors import BoardTimeout, ChannelError, DriverError, LinkError
from drivers.modbus.board import FlashRequest, ModbusRelayBoard, open_client
from drivers.modbus.sim import ModbusSimulator, SimRelayBoard, crc


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    "frame",
    [
        "01 05 00 00 FF 00 8C 3A",
        "01 05 00 00 00 00 CD CA",
        "01 05 02 00 00 07 8D B0",
        "01 05 04 00 00 05 0C F9",
        "01 01 00 00 00 08 3D CC",
        "01 02 00 00 00 08 79 CC",
        "FF 05 00 00 FF 00 99 E4",
    ],
)
def test_crc_of_hardware_md_frames(frame: str) -> None:
    raw = h(frame)
    assert crc(raw[:-2]) == raw[-2:]


def test_flash_request_encodes_the_waveshare_pulse() -> None:
    request = FlashRequest(value=7, dev_id=1, address=0x0200)
    assert request.encode() == h("02 00 00 07")


@pytest.fixture
def twin():
    sim = ModbusSimulator([SimRelayBoard(1, channels=8), SimRelayBoard(2, channels=4)]).start()
    client = open_client(sim.port, 9600, 0.2)
    yield sim, client
    client.close()
    sim.close()


def test_board_pulses_with_a_board_timed_flash(twin) -> None:
    sim, client = twin
    board = ModbusRelayBoard(client, 1, 8, inputs=8)
    board.pulse(1, 700)
    assert sim.frames()[-1] == h("01 05 02 00 00 07 8D B0")
    assert sim.board(1).flashes == [(1, 700)]
    assert sim.board(1).on == 0, "no relay is left on by the daemon"
    assert board.read_inputs().sensors == 0xFF  # every door shut (closed_bit 1)
    assert sim.board(1).door(1).open()
    assert board.read_inputs().sensors == 0xFE


def test_the_echo_keeps_its_raw_value(twin) -> None:
    """The flash's echo is decoded with its 16-bit value, not pymodbus's bool."""
    _, client = twin
    ModbusRelayBoard(client, 1, 8)
    echo = client.execute(False, FlashRequest(value=0x0123, dev_id=1, address=0x0203))
    assert isinstance(echo, FlashRequest)
    assert (echo.address, echo.value) == (0x0203, 0x0123)


@pytest.mark.parametrize(
    ("echo", "came_back"),
    [
        ((0x0201, 7), "coil 0x0201 value 0x0007"),  # another relay
        ((0x0200, 3), "coil 0x0200 value 0x0003"),  # another time (bool(3) == bool(7))
        ((0x0000, 0xFF00), "coil 0x0000 value 0xFF00"),  # a plain coil switched on
    ],
)
def test_a_wrong_echo_is_a_driver_error(twin, echo, came_back) -> None:
    sim, client = twin
    sim.board(1).wrong_echo = echo
    with pytest.raises(DriverError) as info:
        ModbusRelayBoard(client, 1, 8).pulse(1, 700)
    assert not isinstance(info.value, BoardTimeout)
    assert str(info.value) == (
        "Modbus unit 1 relay 1: pulse not confirmed: "
        f"sent coil 0x0200 value 0x0007, the echo was {came_back}"
    )
    assert sim.board(1).flashes == [(1, 700)], "the board acted on what it received"


def test_a_silent_unit_times_out_on_a_pulse(twin) -> None:
    sim, client = twin
    sim.board(1).faults.silent = True
    with pytest.raises(BoardTimeout, match="Modbus unit 1"):
        ModbusRelayBoard(client, 1, 8).pulse(1, 700)
    assert sim.frames() == [h("01 05 02 00 00 07 8D B0")], "sent once, never retried"


def test_board_without_inputs_reads_its_relays_for_liveness(twin) -> None:
    sim, client = twin
    board = ModbusRelayBoard(client, 2, 4)
    assert board.read_inputs().sensors == 0
    assert sim.frames()[-1][:2] == h("02 01")


def test_a_silent_unit_times_out(twin) -> None:
    sim, client = twin
    sim.board(1).faults.silent = True
    with pytest.raises(BoardTimeout, match="Modbus unit 1"):
        ModbusRelayBoard(client, 1, 8, inputs=8, status_retries=1).read_inputs()


def test_channel_out_of_range(twin) -> None:
    _, client = twin
    with pytest.raises(ChannelError):
        ModbusRelayBoard(client, 1, 8).pulse(9, 500)


def test_a_port_that_cannot_open() -> None:
    with pytest.raises(LinkError, match="cannot open /dev/ttyNOPE for Modbus RTU"):
        open_client("/dev/ttyNOPE", 9600, 0.2)


def test_the_client_hook_we_override_still_exists() -> None:
    """RtuClient overrides a private hook of pymodbus's serial client; a pymodbus
    upgrade that drops it must fail here, not slow every exchange silently."""
    from pymodbus.client import ModbusSerialClient

    client = ModbusSerialClient("loop://", baudrate=9600, timeout=0.2)
    assert callable(client._wait_for_data)
    assert client._t0 == 10 / 9600
    assert client.comm_params.timeout_connect == 0.2
    assert hasattr(client, "socket")


def test_a_reply_split_across_reads_is_still_whole(twin) -> None:
    sim, client = twin
    sim.reply_delay = 0.0
    sim.baud = 2400  # slow enough that the reply arrives over several reads
    assert ModbusRelayBoard(client, 1, 8, inputs=8).read_inputs().sensors == 0xFF
