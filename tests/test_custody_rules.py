"""The custody rules (lockerd/custody.py), pure: no store, no clock, no loop."""

import pytest

from lockerd import custody as rules
from lockerd.config.schema import CompartmentConfig
from lockerd.domain import Comp, Door, Intent, Outbound, Parcel, Purpose
from lockerd.sync import apply, commands

ORDER = ["S", "M", "L"]


def _comp(comp_id: str, size: str, column: int, row: int, low: bool = False) -> CompartmentConfig:
    return CompartmentConfig(
        id=comp_id, size=size, column=column, row=row, board="b", lock=1, low_reach=low
    )


BANK = [
    _comp("M1", "M", 1, 1),
    _comp("S2", "S", 2, 2, low=True),
    _comp("S1", "S", 1, 1),
    _comp("L1", "L", 3, 1),
]


def _chosen(free: set[str], size: str, prefer_low: bool = False) -> str | None:
    comp = rules.choose(BANK, free, size, ORDER, prefer_low)
    return None if comp is None else comp.id


def test_the_smallest_free_size_that_fits_is_chosen() -> None:
    assert _chosen({"M1", "S1", "S2", "L1"}, "S") == "S1"
    assert _chosen({"M1", "L1"}, "S") == "M1"
    assert _chosen({"M1", "S1", "L1"}, "M") == "M1"
    assert _chosen({"S1", "S2"}, "M") is None
    assert _chosen(set(), "S") is None


def test_low_reach_is_preferred_when_asked_and_kept_free_otherwise() -> None:
    assert _chosen({"S1", "S2"}, "S", prefer_low=True) == "S2"
    assert _chosen({"S1", "S2"}, "S") == "S1"
    assert _chosen({"S2"}, "S") == "S2"  # a low one rather than none


def test_a_courier_who_needs_a_low_compartment_gets_only_a_low_one() -> None:
    bank = [*BANK, _comp("M2", "M", 2, 1, low=True)]

    def chosen(free: set[str], size: str) -> str | None:
        comp = rules.choose(bank, free, size, ORDER, prefer_low=True)
        return None if comp is None else comp.id

    # A larger low one rather than a smaller one out of reach; none rather than a high one.
    assert chosen({"S1", "M1", "M2", "L1"}, "S") == "M2"
    assert chosen({"S1", "M1", "L1"}, "S") is None
    assert chosen({"S1", "S2", "M2"}, "S") == "S2"


def test_a_released_compartment_is_free_at_once_only_if_its_door_never_opened() -> None:
    assert rules.released(Intent.PENDING) == (Intent.DONE, Comp.FREE)
    assert rules.released(Intent.OPENED) == (Intent.RELEASED, None)


def test_a_drop_off_cancelled_after_its_pulse_is_free_only_once_shut_and_latched() -> None:
    assert rules.released(Intent.PENDING, shut_first=True) == (Intent.RELEASED, None)
    assert rules.released(Intent.OPENED, shut_first=True) == (Intent.RELEASED, None)
    assert rules.shut_after_cancel(latched=True) == (Comp.FREE, None)
    assert rules.shut_after_cancel(latched=False) == (Comp.NEEDS_CHECK, "not_latched")
    assert rules.shut_after_cancel(True, item=False) == (Comp.FREE, None)
    assert rules.shut_after_cancel(True, item=True) == (Comp.NEEDS_CHECK, "item_left_inside")


@pytest.mark.parametrize(
    ("purpose", "intent", "completed", "comp", "parcel", "reason"),
    [
        (Purpose.DROPOFF, Intent.OPENED, "stored", Comp.OCCUPIED, Parcel.STORED, None),
        (Purpose.PICKUP, Intent.OPENED, "collected", Comp.FREE, Parcel.COLLECTED, None),
        (Purpose.COLLECT, Intent.OPENED, "collected", Comp.FREE, Parcel.RETURNED, None),
        (Purpose.DROPOFF, Intent.RELEASED, "released", Comp.FREE, None, None),
        (Purpose.SERVICE, Intent.OPENED, "service", Comp.NEEDS_CHECK, None, "service_open"),
        (Purpose.REMOTE, Intent.OPENED, "remote", Comp.NEEDS_CHECK, None, "remote_open"),
    ],
)
def test_what_a_door_cycle_completes(purpose, intent, completed, comp, parcel, reason) -> None:
    assert rules.completion(purpose, intent) == rules.Completion(completed, comp, parcel, reason)


@pytest.mark.parametrize(
    ("purpose", "intent", "completed", "comp", "outbound"),
    [
        (Purpose.DROPOFF, Intent.OPENED, "stored", Comp.OCCUPIED, Outbound.AWAITING_COLLECTION),
        (Purpose.COLLECT, Intent.OPENED, "collected", Comp.FREE, Outbound.COLLECTED),
        (Purpose.DROPOFF, Intent.RELEASED, "released", Comp.FREE, None),
        (Purpose.COLLECT, Intent.RELEASED, "released", Comp.FREE, None),
    ],
)
def test_what_a_door_cycle_completes_for_an_outbound_parcel(
    purpose: Purpose, intent: Intent, completed: str, comp: Comp, outbound: Outbound | None
) -> None:
    done = rules.completion(purpose, intent, outbound=True)
    assert done == rules.Completion(completed, comp, outbound=outbound)
    assert done.parcel is None  # no inbound parcel changes under an outbound intent


def test_an_outbound_parcel_holds_its_compartment_until_collected() -> None:
    deposited = rules.completion(Purpose.DROPOFF, Intent.OPENED, outbound=True)
    assert rules.in_service(True) == deposited.comp == Comp.OCCUPIED
    assert rules.mismatch(Purpose.DROPOFF, Intent.OPENED, False) == ("parcel_not_seen", "item")
    assert rules.reconciled(deposited.comp, None, Door.CLOSED, False, item=False) == (
        Comp.NEEDS_CHECK,
        "empty_at_start",
    )


def test_a_collected_parcels_door_opened_again_changes_no_custody() -> None:
    reopened = rules.completion(Purpose.PICKUP, Intent.OPENED, collected=True)
    assert reopened == rules.Completion("reopened", Comp.FREE)
    # A courier's collection is never a reopen, whatever the parcel's state.
    assert rules.completion(Purpose.COLLECT, Intent.OPENED, collected=True).parcel == (
        Parcel.RETURNED
    )


@pytest.mark.parametrize(
    ("used", "returned", "kind", "refusal"),
    [
        (True, None, "send", "send_code_used"),
        (False, None, "send", None),
        (False, Parcel.STORED, "send", None),
        (False, Parcel.STORED, "return", "not_collected"),
        (False, Parcel.EXPIRED, "return", "not_collected"),
        (False, Parcel.EXPECTED, "return", "not_collected"),
        (False, Parcel.COLLECTED, "return", None),
        (False, None, "return", None),
        (True, Parcel.COLLECTED, "return", "send_code_used"),
    ],
)
def test_when_a_genuine_send_code_deposits_nothing(
    used: bool, returned: Parcel | None, kind: str, refusal: str | None
) -> None:
    error = rules.send_refusal(used, returned, kind)
    assert (error and error.code) == refusal


def test_a_courier_collects_only_their_carriers_parcels() -> None:
    assert rules.collect_refusal("DHL", "DHL") is None
    assert rules.collect_refusal("DHL", "") is None
    assert rules.collect_refusal("", None) is None
    refusal = rules.collect_refusal("UPS", "DHL")
    assert refusal is not None and refusal.code == "other_carrier"
    refusal = rules.collect_refusal("", "DHL")
    assert refusal is not None and refusal.code == "other_carrier"


@pytest.mark.parametrize(
    ("parcel", "closed_at", "now", "pickups", "comp", "code"),
    [
        (Parcel.COLLECTED, 100.0, 120.0, 1, Comp.FREE, None),
        (Parcel.COLLECTED, 100.0, 120.1, 1, Comp.FREE, "reopen_expired"),
        (Parcel.STORED, None, 100.0, 1, Comp.OCCUPIED, "reopen_expired"),
        (Parcel.RETURNED, 100.0, 101.0, 0, Comp.FREE, "reopen_expired"),
        (Parcel.COLLECTED, 100.0, 101.0, 2, Comp.FREE, "reopen_used"),
        (Parcel.COLLECTED, 100.0, 101.0, 1, Comp.RESERVED, "compartment_taken"),
        (Parcel.COLLECTED, 100.0, 101.0, 1, Comp.NEEDS_CHECK, "compartment_taken"),
    ],
)
def test_when_a_collected_parcels_door_may_open_again(
    parcel, closed_at, now, pickups, comp, code
) -> None:
    refusal = rules.reopen_refusal(parcel, closed_at, now, 20.0, pickups, comp)
    assert (refusal and refusal.code) == code


def test_a_door_left_open_means_a_check_first() -> None:
    assert rules.settled(Comp.FREE, after_alarm=False) == (Comp.FREE, None)
    assert rules.settled(Comp.OCCUPIED, after_alarm=True) == (Comp.NEEDS_CHECK, "left_open")


def test_the_item_sensor_contradicting_the_door_cycle() -> None:
    assert rules.mismatch(Purpose.DROPOFF, Intent.OPENED, None) is None
    assert rules.mismatch(Purpose.DROPOFF, Intent.OPENED, True) is None
    assert rules.mismatch(Purpose.DROPOFF, Intent.OPENED, False) == ("parcel_not_seen", "item")
    assert rules.mismatch(Purpose.PICKUP, Intent.OPENED, True) == ("parcel_still_inside", "empty")
    assert rules.mismatch(Purpose.DROPOFF, Intent.RELEASED, True) == ("item_left_inside", "empty")
    assert rules.mismatch(Purpose.SERVICE, Intent.OPENED, True) is None


def test_back_in_service_and_a_new_deadline() -> None:
    assert (rules.in_service(True), rules.in_service(False)) == (Comp.OCCUPIED, Comp.FREE)
    assert Comp.FREE not in rules.CHECKABLE
    assert rules.extended(200.0, 100.0, Parcel.EXPIRED) == Parcel.STORED
    assert rules.extended(50.0, 100.0, Parcel.EXPIRED) == Parcel.EXPIRED


def test_pickup_refusals() -> None:
    assert rules.door_refusal(Comp.OCCUPIED) is None
    assert rules.door_refusal(Comp.NEEDS_CHECK) is None
    assert rules.door_refusal(Comp.OUT_OF_SERVICE).code == "compartment_out_of_order"
    assert rules.door_refusal(Comp.OPEN).code == "pickup_in_progress"
    expired = rules.pickup_refusal(None, Parcel.EXPIRED)
    assert expired is not None and expired.code == "parcel_expired"
    assert rules.pickup_refusal(None, Parcel.STORED) is None
    far = rules.unreachable("S1", "")
    assert far.code == "compartment_unreachable" and "call" not in far.message


def test_reconciling_after_a_start() -> None:
    assert rules.reconciled(Comp.FREE, None, Door.CLOSED, False) == (Comp.FREE, None)
    assert rules.reconciled(Comp.FREE, None, Door.OPEN, False) == (
        Comp.NEEDS_CHECK,
        "open_at_start",
    )
    assert rules.reconciled(Comp.OCCUPIED, None, Door.CLOSED, True)[1] == "interrupted_unlock"
    assert rules.reconciled(Comp.OUT_OF_SERVICE, "x", Door.OPEN, True) == (
        Comp.OUT_OF_SERVICE,
        "x",
    )
    assert rules.reconciled(Comp.FREE, None, Door.CLOSED, False, item=True)[1] == "item_at_start"
    assert rules.reconciled(Comp.OCCUPIED, None, Door.CLOSED, False, item=False)[1] == (
        "empty_at_start"
    )


def test_every_data_command_has_its_effect_in_the_table() -> None:
    assert set(apply.EFFECTS) == set(commands.TYPES) - set(commands.SIGNED)
