"""Scanners and their twins: the camera loop, the serial module, the keyboard wedge."""

from __future__ import annotations

import queue
import sys
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import LinkError
from drivers.scanner.base import RepeatFilter
from drivers.scanner.camera import STILL_DECODE_EVERY, CameraScanner
from drivers.scanner.decode import make_decoder
from drivers.scanner.serialscan import LineSplitter, SerialScanner
from drivers.scanner.sim import SimCamera, SimSerialScanner
from drivers.scanner.wedge import KeyAssembler, WedgeScanner

SHIFT = 42
KEYS = {"J": 36, "D": 32, "0": 11, "1": 2, "-": 12, "a": 30}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def camera(sim: SimCamera, clock: Clock, repeat_s: float = 3.0) -> CameraScanner:
    decoder = make_decoder("zxing", ["qr", "code128"])
    return CameraScanner("cam", sim, decoder, lambda scan: None, repeat_s=repeat_s, clock=clock)


def test_a_code_held_in_view_is_read_once() -> None:
    sim, clock = SimCamera(), Clock()
    scanner = camera(sim, clock)
    sim.show_code("LKR1.a.b", "qr", frames=5)
    reads = []
    for _ in range(8):
        reads += scanner.step()
        clock.now += 0.1
    assert [(s.text, s.format, s.source) for s in reads] == [("LKR1.a.b", "qr", "cam")]
    assert scanner.frames_read == 8 and sim.idle


def test_a_code_shown_again_after_it_was_away_is_read_again() -> None:
    sim, clock = SimCamera(), Clock()
    scanner = camera(sim, clock, repeat_s=3.0)
    sim.show_code("JJD0001", "code128", frames=1)
    assert [s.text for s in scanner.step()] == ["JJD0001"]
    assert scanner.step() == []  # out of view
    clock.now += 2.0
    sim.show_code("JJD0001", "code128", frames=1)
    assert scanner.step() == []  # back within repeat_s: the same read
    clock.now += 3.5
    sim.show_code("JJD0001", "code128", frames=1)
    assert [s.text for s in scanner.step()] == ["JJD0001"]


def test_repeat_filter_keeps_a_code_while_it_stays_in_view() -> None:
    repeats = RepeatFilter(1.0)
    assert [repeats.fresh("A", t / 2) for t in range(10)] == [True] + [False] * 9


class DeadCamera:
    def read(self):
        return None

    def close(self) -> None:
        pass


def test_a_camera_that_gives_no_frame_is_counted_and_offline() -> None:
    scanner = CameraScanner("cam", DeadCamera(), make_decoder("zxing", ["qr"]), print)
    assert scanner.step() == [] and scanner.step() == []
    assert (scanner.failed_reads, scanner.online) == (2, False)


def test_the_camera_thread_reports_what_it_sees() -> None:
    sim, seen = SimCamera(), queue.Queue()
    scanner = CameraScanner("cam", sim, make_decoder("zxing", ["qr"]), seen.put, fps=30).start()
    try:
        sim.show_code("LKR1.x.y", "qr", frames=3)
        scan = seen.get(timeout=5)
    finally:
        scanner.close()
    assert (scan.text, scan.source) == ("LKR1.x.y", "cam")


def test_the_simulated_camera_refuses_a_picture_that_does_not_fit() -> None:
    import numpy as np

    with pytest.raises(ValueError, match="fit 640x480"):
        SimCamera().show(np.zeros((500, 10)), 1)


def test_the_simulated_camera_plays_image_files(tmp_path) -> None:
    import cv2

    from drivers.scanner.sim import render_code

    path = tmp_path / "label.png"
    cv2.imwrite(str(path), render_code("PKG42", "code128", 2))
    scanner = camera(SimCamera(images=[path], hold=2), Clock())
    assert [s.text for s in scanner.step()] == ["PKG42"]


# -- serial scanner module ----------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_lines_end_at_cr_lf_or_both(ending) -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"JJD0001" + ending + b"PKG2" + ending) == [b"JJD0001", b"PKG2"]


def test_an_overlong_line_is_dropped_whole() -> None:
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"0123456789AB\r\nOK12\r\n") == [b"OK12"]
    assert splitter.dropped == 1


LINE = st.binary(min_size=1, max_size=20).filter(lambda b: b"\r" not in b and b"\n" not in b)


@given(st.lists(LINE, max_size=5), st.data())
def test_how_the_bytes_are_chunked_does_not_matter(lines, data) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    splitter = LineSplitter()
    out = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += splitter.feed(stream[start:end])
    assert out == lines


def test_a_serial_scanner_reads_its_twin_on_a_pty() -> None:
    sim, seen = SimSerialScanner(), queue.Queue()
    scanner = SerialScanner("handheld", sim.port, 9600, seen.put).start()
    try:
        sim.scan("JJD0001")
        sim.scan(b"]C1\x1d0012345", terminator=b"\n")
        first, second = seen.get(timeout=5), seen.get(timeout=5)
    finally:
        scanner.close()
        sim.close()
    assert (first.text, first.source) == ("JJD0001", "handheld")
    assert second.text == "]C1\x1d0012345"  # raw bytes: the scan stream decides what is usable


def test_a_serial_port_that_cannot_be_opened_is_named() -> None:
    scanner = SerialScanner("handheld", "/dev/ttyACM-none", 9600, print)
    with pytest.raises(LinkError, match="scanner handheld: cannot open /dev/ttyACM-none"):
        scanner.start()


# -- keyboard wedge ---------------------------------------------------------------


def typed(assembler: KeyAssembler, text: str) -> list[str | None]:
    out = []
    for char in text:
        upper = char.isalpha() and char.isupper()
        if upper:
            out.append(assembler.key(SHIFT, 1))
        code = KEYS[char]
        out += [assembler.key(code, 1), assembler.key(code, 0)]
        if upper:
            out.append(assembler.key(SHIFT, 0))
    out.append(assembler.key(28, 1))
    return [o for o in out if o is not None]


def test_the_wedge_turns_key_presses_back_into_the_code() -> None:
    assert typed(KeyAssembler(), "JJD0001-a") == ["JJD0001-a"]


def test_a_code_with_a_key_that_has_no_character_is_dropped() -> None:
    keys = KeyAssembler()
    keys.key(KEYS["1"], 1)
    keys.key(59, 1)  # F1
    assert keys.key(28, 1) is None and keys.unknown_keys == 1
    assert typed(keys, "10") == ["10"]  # the next code is read again


def test_a_wedge_scanner_without_evdev_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "evdev", None)
    with pytest.raises(LinkError, match="python3-evdev"):
        WedgeScanner("wedge", "/dev/input/event9", print)


class FakeCapture:
    """Stands in for cv2.VideoCapture: the one thing here that needs a camera device."""

    opened: ClassVar[list[tuple]] = []
    frames: ClassVar[list] = []
    plugged = True

    def __init__(self, source, backend) -> None:
        FakeCapture.opened.append((source, backend))
        self.settings: dict = {}

    def isOpened(self) -> bool:
        return FakeCapture.plugged

    def set(self, prop, value) -> None:
        self.settings[prop] = value

    def read(self):
        if not FakeCapture.plugged or not FakeCapture.frames:
            return False, None
        return True, FakeCapture.frames.pop(0)

    def release(self) -> None:
        pass


@pytest.fixture
def capture(monkeypatch):
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    FakeCapture.opened, FakeCapture.frames, FakeCapture.plugged = [], [], True
    return FakeCapture


def test_a_v4l2_camera_gives_grey_frames_and_comes_back_after_unplugging(capture) -> None:
    import cv2
    import numpy as np

    from drivers.scanner.camera import OpenCvCamera

    camera = OpenCvCamera("0", 640, 480, 10, reopen_s=0.0)
    assert capture.opened == [(0, cv2.CAP_V4L2)]
    capture.frames.append(np.full((480, 640, 3), (0, 0, 255), np.uint8))  # BGR red
    grey = camera.read()
    assert grey.shape == (480, 640) and int(grey[0, 0]) == 76  # OpenCV's luma of red
    capture.plugged = False
    assert camera.read() is None  # the read fails: released
    assert camera.read() is None  # reopening fails while unplugged
    capture.plugged = True
    capture.frames.append(np.zeros((480, 640), np.uint8))
    assert camera.read() is not None
    assert len(capture.opened) == 3


def test_a_camera_that_cannot_be_opened_is_named(capture) -> None:
    from drivers.scanner.camera import OpenCvCamera

    capture.plugged = False
    with pytest.raises(LinkError, match="cannot open camera /dev/video7"):
        OpenCvCamera("/dev/video7", 640, 480, 10)


class CountingDecoder:
    """The real decoder, counting the frames it is given."""

    def __init__(self) -> None:
        self.inner = make_decoder("zxing", ["qr", "code128"])
        self.frames = 0

    def decode(self, frame):
        self.frames += 1
        return self.inner.decode(frame)


def test_a_still_empty_scene_is_decoded_only_now_and_then() -> None:
    sim, clock, decoder = SimCamera(), Clock(), CountingDecoder()
    scanner = CameraScanner("cam", sim, decoder, lambda scan: None, clock=clock)
    for _ in range(20):
        assert scanner.step() == []
        clock.now += 0.1
    assert scanner.frames_read == 20
    assert decoder.frames == 20 // STILL_DECODE_EVERY


def test_a_code_coming_into_a_still_scene_is_read_on_its_first_frame() -> None:
    sim, clock, decoder = SimCamera(), Clock(), CountingDecoder()
    scanner = CameraScanner("cam", sim, decoder, lambda scan: None, clock=clock)
    for _ in range(3):
        scanner.step()
    sim.show_code("LKR1.a.b", "qr", frames=3)
    assert [s.text for s in scanner.step()] == ["LKR1.a.b"]
    before = decoder.frames
    scanner.step()
    scanner.step()
    assert decoder.frames == before + 2  # a code in view: every frame decoded
