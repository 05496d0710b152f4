"""What a board family is to lockerd: its config section, its capabilities and its factory.

A family's driver lives in ``drivers/<family>/`` (codec, board, twin); its
lockerd side is one module here holding the ``[[board]]`` dataclass, the
checks that section needs beyond types and bounds, the line ``check-config``
prints, and how the boards of one bus are opened (or their twin started).
Each module ends in a :class:`Family` row; ``lockerd/families/__init__.py``
lists the rows.

Nothing here imports the rest of lockerd at run time: the config schema
imports :class:`BoardConfig` from here.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from drivers.simworld import SimDoor
    from lockerd.config._typed import Problems
    from lockerd.config.schema import BusConfig, Config
    from lockerd.hardware import Hardware


class BoardConfig(Protocol):
    """What the bank and the wiring checks read of every family's ``[[board]]`` section."""

    @property
    def name(self) -> str: ...
    @property
    def bus(self) -> str: ...
    @property
    def power_group(self) -> str:
        """The supply its locks draw from ("" for a board that drives none)."""

    @property
    def channels(self) -> int:
        """Lock channels (0: it only senses)."""

    @property
    def sensor_channels(self) -> int:
        """Inputs a door switch or an item sensor may be wired to."""

    @property
    def has_feedback(self) -> bool:
        """It reads each lock's own switch."""

    @property
    def door_from_hook(self) -> bool:
        """Each door is read from its lock's switch, not from a door switch."""

    @property
    def items(self) -> bool:
        """Its inputs may carry item (infrared) sensors."""

    @property
    def locked_bit(self) -> int: ...
    @property
    def closed_bit(self) -> int: ...


Wire = Literal["serial", "i2c", "gpio"]


@dataclass(frozen=True)
class Family:
    """One board family as lockerd knows it: one row of ``lockerd.families.FAMILIES``."""

    #: The ``protocol`` of a ``[[bus]]`` of this family (a user-facing name: never renamed).
    protocol: str
    #: The ``[[board]]`` section on such a bus: a frozen dataclass satisfying BoardConfig.
    board: type[Any]
    #: Its paragraph in docs/config-reference.md.
    about: str
    #: What its bus takes: a port or a simulator (serial, i2c) or a pin factory (gpio).
    wire: Wire
    #: Checks a board's values beyond their types and bounds: ``(board, "board[i]", checks)``.
    check: Callable[[Any, str, BoardChecks], None]
    #: What ``lockerd check-config`` says of a board, after its name and bus.
    describe: Callable[[Any, Config], str]
    #: Opens one bus's boards (or starts their twin): ``(hardware, bus, boards)``.
    open: Callable[[Hardware, BusConfig, list[Any]], None]
    #: Its board keys that say which channels and inputs a board has: while one of them
    #: could not be read, its compartments' channels are not checked against it.
    channel_keys: tuple[str, ...] = ()
    #: Wires a twin's input to a simulated compartment's item sensor, where it has inputs.
    attach_item: Callable[[Hardware, Any, int, SimDoor], None] | None = None
    #: Why a door switch may not be wired to an input of a board, or None.
    refuse_sensor: Callable[[Any, int], str | None] = lambda board, channel: None
    #: Its twin watches doors the other families' twins make: opened after them.
    senses_only: bool = False


@dataclass
class BoardChecks:
    """What a family's check gets: the config, where problems go, and what boards claimed."""

    config: Config
    problems: Problems
    #: The power groups' names (any name, while one of them could not be read).
    groups: Container[str]
    #: ``(bus, address) -> board``: an address is one board's on its bus.
    addresses: dict[tuple[str, int], str] = field(default_factory=dict)
    #: ``(bus, pin) -> "board.key"``: a GPIO line is claimed once.
    pins: dict[tuple[str, int], str] = field(default_factory=dict)

    def sound(self, path: str, *keys: str) -> bool:
        """Every one of ``keys`` under ``path`` was read without a problem."""
        return all(self.problems.intact(f"{path}.{key}") for key in keys)

    def power_group(self, board: BoardConfig, path: str) -> None:
        if board.power_group not in self.groups:
            self.problems.add(f"{path}.power_group", f"no power_group named {board.power_group!r}")

    def address(self, board: Any, path: str, shown: str) -> None:
        """``board.address`` is no other board's on its bus (``shown`` as the message writes it)."""
        other = self.addresses.setdefault((board.bus, board.address), board.name)
        if other != board.name:
            self.problems.add(f"{path}.address", f"{shown} is already board {other!r}")

    def energize(self, board: Any, path: str) -> None:
        """The board's own energize time is within ``safety.max_pulse_ms``."""
        limit = self.config.safety.max_pulse_ms
        if board.energize_ms > limit and self.problems.intact("safety.max_pulse_ms"):
            self.problems.add(
                f"{path}.energize_ms", f"{board.energize_ms} exceeds safety.max_pulse_ms ({limit})"
            )


def check_addressed(board: Any, path: str, checks: BoardChecks) -> None:
    """The checks of a lock board on a serial bus: power group, address, energize time."""
    checks.power_group(board, path)
    if checks.sound(path, "name", "address"):
        checks.address(board, path, str(board.address))
    if hasattr(board, "energize_ms"):
        checks.energize(board, path)


def door_wiring(config: Config, board: str) -> dict[int, int]:
    """Input -> lock channel, for the door switches wired to ``board``'s own inputs."""
    if config.board_named(board).door_from_hook:
        return {}  # the doors are read from the locks' switches; the inputs carry no door
    return {
        c.sensor_channel: c.lock
        for c in config.compartment
        if c.board == board and c.door_board == board
    }


def timing(bus: BusConfig) -> dict[str, Any]:
    """A serial board's reply timeout and status-read retries, from its bus."""
    return {"timeout": bus.timeout_ms / 1000, "status_retries": bus.retries}


def describe_hooked(board: Any, config: Config) -> str:
    """check-config's words for a lock board read by address, doors from hooks or sensors."""
    if board.door_from_hook:
        where = f"door from each lock's switch; locked={board.locked_bit}"
    else:
        where = f"door from sensor bits; locked={board.locked_bit} closed={board.closed_bit}"
    return f"address {board.address}, {where}; {powered(board, config)}"


def powered(board: Any, config: Config) -> str:
    """``N compartments; power GROUP``: the tail of a lock board's check-config line."""
    count = sum(1 for c in config.compartment if c.board == board.name)
    return f"{count} compartments; power {board.power_group}"


def attach_serial_item(hardware: Hardware, board: Any, channel: int, door: SimDoor) -> None:
    """A serial twin's input ``channel`` sees what is inside ``door``'s compartment."""
    serial = hardware.serial_sims.get(board.bus)
    if serial is not None:
        sim_board = serial.board(board.address)
        sim_board.item_bit = board.item_bit
        sim_board.items[channel] = door
