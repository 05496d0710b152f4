"""The store's reads are typed records; sent as JSON they are what the rows were."""

import json

import pytest

from lockerd.clock import FakeClock
from lockerd.domain import Comp, Door, Intent, Parcel, Purpose
from lockerd.store import Store
from tests.rig import bank_config


@pytest.fixture
def store(tmp_path):
    s = Store.open(bank_config(tmp_path), FakeClock(), notices=True)
    s.compartments.sync_layout()
    yield s
    s.close()


def _stored(store: Store) -> int:
    r = store.custody.reserve_for_dropoff("c1", "PCL1", "S")
    store.custody.door_opened(r.compartment_id)
    closed = store.custody.door_closed(r.compartment_id)
    assert closed.completed == "stored" and closed.parcel is not None
    return closed.parcel


def _rows(store: Store, sql: str) -> list[dict]:
    return [dict(r) for r in store.db.conn.execute(sql)]


def test_records_carry_the_domain_enums(store) -> None:
    parcel_id = _stored(store)
    comp = store.compartments.get("S1")
    assert (type(comp.state), type(comp.door)) == (Comp, Door)
    (held,) = [c for c in store.compartments.all() if c.parcel_id is not None]
    assert (held.id, held.parcel_barcode, held.parcel_state) == ("S1", "PCL1", Parcel.STORED)
    parcel = store.parcels.get(parcel_id)
    assert parcel is not None and type(parcel.state) is Parcel
    intent = store.intents.get(1)
    assert intent is not None and type(intent.purpose) is Purpose and type(intent.state) is Intent
    assert store.parcels.get(999) is None and store.intents.get(999) is None


def test_a_record_as_json_is_its_row(store) -> None:
    _stored(store)
    parcels = [p.to_json() for p in store.parcels.all()]
    rows = _rows(store, "SELECT * FROM parcels")
    for row in rows:
        del row["code_hmac"]
    assert json.dumps(parcels) == json.dumps(rows)
    intent = store.intents.get(1)
    assert intent is not None
    assert json.dumps(intent.to_json()) == json.dumps(
        _rows(store, "SELECT * FROM unlock_intents")[0]
    )
    notice = store.parcels.notices()[0].to_json()
    assert list(notice) == [
        "parcel_id",
        "seq",
        "code",
        "barcode",
        "recipient",
        "compartment_id",
        "pickup_by",
        "group",
    ]
