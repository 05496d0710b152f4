"""``lockerd`` as a process on a pty simulator: a whole drop-off and pickup over HTTP."""

import sqlite3

import pytest

from drivers.kerong import cu16
from drivers.kerong.sim import Cu16Simulator, SimCu16
from tests import families
from tests.daemon import Daemon


@pytest.fixture
def sim():
    simulator = Cu16Simulator([SimCu16(0, wiring=DOOR_SWITCHES)]).start()
    yield simulator
    simulator.close()


#: The test bank's door switches on the board's inputs (input -> lock), as its
#: config says (door_input = "sensor"; L1's switch on input 9).
DOOR_SWITCHES = {1: 1, 2: 2, 3: 3, 4: 4, 9: 5}


@pytest.fixture
def config(tmp_path, sim):
    data = families.bank(tmp_path / "state")
    del data["bus"][0]["simulator"]
    data["bus"][0].update(port=sim.port, gap_ms=5)
    data["kiosk"]["demo"] = True
    path = tmp_path / "locker.toml"
    path.write_text(families.text(data))
    return path


async def test_dropoff_and_pickup_over_http(config, sim, tmp_path) -> None:
    async with Daemon(config) as daemon:
        events = await daemon.events(after=0)
        status, login = await daemon.call("POST", "/api/courier/login", {"code": "4321"})
        assert status == 200, login
        token = login["token"]

        # The courier stands at M1 (lock 3) pulling its handle before the pulse:
        # the door opens the moment the latch releases.
        door = sim.board(0).door(3)
        door.hand = True
        status, flow = await daemon.call("POST", "/api/dropoffs", {"barcode": "EXP0001"}, token)
        assert (status, flow["state"], flow["compartment"]) == (201, "opening", "M1")
        sim.wait_for_frame(cu16.unlock_request(0, 3), timeout=10)
        await events.flow(flow["id"], "open")
        assert door.is_open
        door.close()
        stored = await events.event("parcel.stored", barcode="EXP0001")
        await events.flow(flow["id"], "stored")
        assert stored["data"]["compartment"] == "M1"

        status, messages = await daemon.call("GET", "/api/demo/messages")
        code = messages["messages"][0]["code"]
        status, wrong = await daemon.call("POST", "/api/pickups", {"code": "00000000"})
        assert (status, wrong["error"]["code"]) == (403, "wrong_code")

        mark = len(sim.frames())
        door.hand = True  # the recipient's hand on the handle, ready for the next pulse
        status, pickup = await daemon.call("POST", "/api/pickups", {"code": code})
        assert (status, pickup["compartment"]) == (201, "M1")
        sim.wait_for_frame(cu16.unlock_request(0, 3), timeout=10, after=mark)
        await events.flow(pickup["id"], "open")
        assert door.is_open
        door.close()
        await events.event("parcel.collected")
        await events.flow(pickup["id"], "collected")
        await events.close()
        assert await daemon.stop() == 0

    unlocks = [f for f in sim.frames() if f[2] == cu16.CMD_UNLOCK]
    assert unlocks == [cu16.unlock_request(0, 3)] * 2
    assert cu16.status_request(0) in sim.frames()
    assert set(sim.frames()) <= {cu16.status_request(0), cu16.unlock_request(0, 3)}

    db = sqlite3.connect(tmp_path / "state" / "lockerd.db")
    assert db.execute("SELECT state FROM compartments WHERE id = 'M1'").fetchone() == ("free",)
    assert db.execute(
        "SELECT state, compartment_id FROM parcels WHERE barcode = 'EXP0001'"
    ).fetchone() == (
        "collected",
        "M1",
    )
    assert db.execute("SELECT COUNT(*) FROM pickup_notices").fetchone() == (0,)
    assert db.execute("SELECT purpose, state FROM unlock_intents ORDER BY id").fetchall() == [
        ("dropoff", "done"),
        ("pickup", "done"),
    ]
    types = [row[0] for row in db.execute("SELECT type FROM journal ORDER BY seq")]
    assert types.index("unlock.intent") < types.index("lock.pulsed") < types.index("parcel.stored")
    assert types[-1] == "parcel.collected"


async def test_http_bad_input_gets_clear_errors(config, sim) -> None:
    async with Daemon(config) as daemon:
        cases = [
            ("POST", "/api/pickups", "not json", 400, "invalid_json"),
            ("POST", "/api/pickups", [1, 2], 400, "invalid_json"),
            ("POST", "/api/pickups", {}, 400, "missing_field"),
            ("POST", "/api/pickups", {"code": "12345678", "pin": 1}, 400, "unknown_field"),
            ("POST", "/api/pickups", {"code": "12"}, 400, "invalid_code"),
            ("POST", "/api/dropoffs", {"barcode": "PCL00001"}, 401, "session_expired"),
            ("GET", "/api/pickups/nope", None, 404, "unknown_flow"),
            ("POST", "/api/demo/doors/Z9/open", None, 404, "unknown_compartment"),
            ("POST", "/api/demo/doors/S1/kick", None, 404, "unknown_action"),
        ]
        for method, path, body, status, code in cases:
            got_status, got = await daemon.call(method, path, body)
            assert (got_status, got["error"]["code"]) == (status, code), (path, body, got)
        status, login = await daemon.call("POST", "/api/courier/login", {"code": "4321"})
        token = login["token"]
        status, got = await daemon.call(
            "POST", "/api/dropoffs", {"barcode": "PCL00001", "prefer_low": "yes"}, token
        )
        assert (status, got["error"]["code"]) == (400, "invalid_field")
        status, got = await daemon.call("POST", "/api/dropoffs", {"barcode": "PCL 0001"}, token)
        assert (status, got["error"]["code"]) == (400, "invalid_barcode")
        status, state = await daemon.call("GET", "/api/status")
        assert state["free"] == {"S": 2, "M": 2, "L": 1}
        assert state["last_seq"] >= 1
        assert all(c["state"] == "free" for c in state["compartments"])
    assert [f for f in sim.frames() if f[2] == cu16.CMD_UNLOCK] == []


async def test_port_that_cannot_be_opened_stops_the_start(tmp_path) -> None:
    data = families.bank(tmp_path / "state")
    del data["bus"][0]["simulator"]
    data["bus"][0]["port"] = "/dev/ttyNOPE9"
    path = tmp_path / "locker.toml"
    path.write_text(families.text(data))
    daemon = Daemon(path)
    with pytest.raises(RuntimeError, match="cannot open /dev/ttyNOPE9"):
        await daemon.__aenter__()
    assert await daemon.proc.wait() == 1
