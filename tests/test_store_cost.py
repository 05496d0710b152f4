"""What a custody commit costs the database does not grow with the locker's history.

Counted in SQLite virtual-machine steps (a progress handler called every step), so
the figures are exact and the same on any machine: a reservation and a door cycle
after thousands of finished drop-offs and collected parcels make no more steps than
on a new locker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lockerd.clock import FakeClock
from lockerd.config import parse
from lockerd.domain import LIVE_INTENTS
from lockerd.store import Store
from lockerd.store.intents import LIVE_SQL
from tests.rig import bank_config

HISTORY = 3000


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = Store.open(bank_config(tmp_path), FakeClock())
    s.compartments.sync_layout()
    yield s
    s.close()


def steps(store: Store, fn: Callable[[], object]) -> int:
    """SQLite VM steps ``fn`` makes."""
    count = 0

    def step() -> int:
        nonlocal count
        count += 1
        return 0

    store.db.conn.set_progress_handler(step, 1)
    try:
        fn()
    finally:
        store.db.conn.set_progress_handler(None, 1)
    return count


def cycle(store: Store, barcode: str) -> dict[str, int]:
    """A drop-off reserved, its door opened and closed (the parcel stored), then collected
    (untimed); the steps of each custody change."""
    reservation: list[Any] = []
    figures = {
        "reserve": steps(
            store,
            lambda: reservation.append(store.custody.reserve_for_dropoff("c1", barcode, "S")),
        )
    }
    comp = reservation[0].compartment_id
    figures["open"] = steps(store, lambda: store.custody.door_opened(comp))
    figures["store"] = steps(store, lambda: store.custody.door_closed(comp))
    with store.context.change() as conn:
        conn.execute("UPDATE parcels SET state = 'collected' WHERE compartment_id = ?", (comp,))
        conn.execute("UPDATE compartments SET state = 'free' WHERE id = ?", (comp,))
    return figures


def add_history(store: Store, n: int) -> None:
    """``n`` finished drop-offs: done intents and collected parcels, as years of use leave."""
    with store.context.change() as conn:
        conn.executemany(
            "INSERT INTO unlock_intents (compartment_id, purpose, state, barcode, size, actor,"
            " created_at, updated_at) VALUES ('L1', 'dropoff', 'done', ?, 'S', 'c1', 0, 0)",
            [(f"OLD{i:06d}",) for i in range(n)],
        )
        conn.executemany(
            "INSERT INTO parcels (barcode, size, state, compartment_id, code_hmac, code_length,"
            " created_at, updated_at) VALUES (?, 'S', 'collected', 'L1', ?, 8, 0, 0)",
            [(f"OLD{i:06d}", i.to_bytes(4, "big")) for i in range(n)],
        )


def test_custody_commits_cost_the_same_after_years_of_history(store: Store) -> None:
    cycle(store, "WARM1")  # the first of each statement is prepared once
    new = cycle(store, "NEW1")
    add_history(store, HISTORY)
    cycle(store, "WARM2")
    old = cycle(store, "OLD1")
    # A scan of the history would make at least one step a finished row.
    for change, count in new.items():
        assert old[change] < count + HISTORY // 10, (change, new, old)


#: A door closing on a drop-off stores its parcel in this many SQLite steps at most: the
#: count on a new locker (462 with SQLite 3.40) and a little room. A statement more, or a
#: row written twice, costs 50 to 130 steps.
STORE_STEPS = 480


def test_storing_a_parcel_writes_each_row_once(store: Store) -> None:
    cycle(store, "WARM1")  # the first of each statement is prepared once
    comp = store.custody.reserve_for_dropoff("c1", "NEW1", "S").compartment_id
    store.custody.door_opened(comp)
    conn = store.db.conn
    before = conn.total_changes
    count = steps(store, lambda: store.custody.door_closed(comp))
    # Two journal events (door closed, parcel stored), the parcel, the compartment's
    # state with its closed door, and the intent done with its parcel: each row once.
    assert conn.total_changes - before == 5
    assert count <= STORE_STEPS, count
    parcel = conn.execute(
        "SELECT id, state, compartment_id, length(code_hmac) FROM parcels WHERE barcode = 'NEW1'"
    ).fetchone()
    assert tuple(parcel)[1:] == ("stored", comp, 32)
    row = conn.execute("SELECT state, door FROM compartments WHERE id = ?", (comp,)).fetchone()
    assert tuple(row) == ("occupied", "closed")
    intent = conn.execute(
        "SELECT state, parcel_id FROM unlock_intents WHERE barcode = 'NEW1'"
    ).fetchone()
    assert tuple(intent) == ("done", parcel[0])
    types = [r[0] for r in conn.execute("SELECT type FROM journal ORDER BY seq DESC LIMIT 2")]
    assert types == ["parcel.stored", "door.closed"]


def test_the_live_states_written_out_are_the_domains() -> None:
    assert f"state IN ({','.join(repr(str(s)) for s in LIVE_INTENTS)})" == LIVE_SQL


def test_a_reservation_costs_the_same_in_a_bank_of_768_doors(tmp_path: Any) -> None:
    from benchmarks.scale import bank_text

    figures = []
    for doors in (16, 768):
        state = tmp_path / str(doors)
        config = parse(bank_text(state, ["/dev/null"] * 2, doors), tmp_path / f"{doors}.toml")
        store = Store.open(config, FakeClock())
        try:
            store.compartments.sync_layout()
            cycle(store, "WARM")
            figures.append(cycle(store, "PCL1")["reserve"])
        finally:
            store.close()
    small, large = figures
    # Reading the bank's free compartments would make a step or more a door.
    assert large < small + 768 // 4, figures
