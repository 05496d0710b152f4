"""Locks and door switches on the GPIO header, through gpiozero's MockFactory."""

import pytest
from gpiozero.pins.mock import MockFactory

from drivers.errors import ChannelError, LinkError
from drivers.gpio.board import GpioBoard, find_chip, make_factory
from drivers.gpio.sim import GpioSimulator


@pytest.fixture
def factory():
    mock = MockFactory()
    yield mock
    mock.reset()


@pytest.mark.parametrize("active_high", [True, False])
def test_pulse_energizes_then_releases(factory, active_high) -> None:
    sim = GpioSimulator(factory, [17, 27], [5, 6], active_high=active_high)
    board = GpioBoard(factory, [17, 27], door_pins=[5, 6], active_high=active_high)
    sim.settle()
    pin = factory.pin(17)
    idle = 0 if active_high else 1
    assert pin.state == idle, "opening the board never energizes a coil"
    sim.door(1).pull()  # a person pulls during the pulse
    board.pulse(1, 50)
    assert [s.state for s in pin.states][-2:] == [1 - idle, idle]
    assert pin.state == idle
    assert sim.door(1).is_open and not sim.door(1).latched and sim.door(2).latched
    assert len(sim.door(1).pulses) == 1 and not sim.door(2).pulses
    board.close()


def test_a_latch_nobody_pulls_catches_when_the_pin_drops(factory) -> None:
    sim = GpioSimulator(factory, [17], [5])
    board = GpioBoard(factory, [17], door_pins=[5])
    sim.settle()
    board.pulse(1, 50)
    assert sim.door(1).latched and not sim.door(1).open()
    board.close()


def test_doors_read_as_raw_levels(factory) -> None:
    sim = GpioSimulator(factory, [17, 27], [5, 6], closed_level=0)
    board = GpioBoard(factory, [17, 27], door_pins=[5, 6], pull_up=True)
    sim.settle()
    assert board.read_inputs().sensors == 0b00  # both shut: switches pull to ground
    sim.door(2).pull()
    board.pulse(2, 50)
    assert sim.door(2).is_open
    assert board.read_inputs().sensors == 0b10
    sim.door(2).close()
    assert board.read_inputs().sensors == 0b00
    board.close()


def test_feedback_pins_follow_the_latch(factory) -> None:
    sim = GpioSimulator(factory, [17], [5], feedback_pins=[12], locked_level=0)
    board = GpioBoard(factory, [17], door_pins=[5], feedback_pins=[12])
    sim.settle()
    assert board.read_inputs().locks == 0
    board.pulse(1, 50)
    assert board.read_inputs().locks == 0, "nobody pulled: the latch caught again"
    sim.door(1).pull()
    board.pulse(1, 50)
    assert board.read_inputs().locks == 1, "the open door holds the latch out"
    sim.door(1).close()
    assert board.read_inputs().locks == 0
    board.close()


def test_channel_out_of_range(factory) -> None:
    board = GpioBoard(factory, [17], door_pins=[5])
    with pytest.raises(ChannelError, match=r"GPIO lock 2 outside 1\.\.1"):
        board.pulse(2, 50)
    board.close()


def test_unknown_factory_is_refused_not_replaced() -> None:
    with pytest.raises(LinkError, match="unknown pin factory 'magic'"):
        make_factory("magic")


def test_factory_that_cannot_load_says_why() -> None:
    with pytest.raises(LinkError, match="pin factory 'pigpio' could not be loaded"):
        make_factory("pigpio")


def test_chip_found_by_label(tmp_path) -> None:
    for number, label in ((0, "pinctrl-bcm2711"), (4, "pinctrl-rp1")):
        (tmp_path / f"gpiochip{number}").mkdir()
        (tmp_path / f"gpiochip{number}" / "label").write_text(label + "\n")
    assert find_chip("pinctrl-rp1", str(tmp_path)) == 4
    with pytest.raises(LinkError, match="no gpiochip labelled 'nope'"):
        find_chip("nope", str(tmp_path))


@pytest.mark.parametrize("active_high", [True, False])
def test_a_stopping_daemon_releases_a_pulse_under_way_at_once(factory, active_high) -> None:
    import threading

    board = GpioBoard(factory, [17, 27], active_high=active_high, max_pulse_ms=60_000)
    pin, idle = factory.pin(17), 0 if active_high else 1
    pulse = threading.Thread(target=board.pulse, args=(1, 60_000))
    pulse.start()
    for _ in range(1000):  # until the thread has the coil on
        if pin.state != idle:
            break
        pulse.join(0.005)
    assert pin.state != idle
    board.release_now()
    pulse.join(timeout=2)  # a deadline: the 60 s pulse must have ended long before
    assert not pulse.is_alive() and pin.state == idle
    board.close()
