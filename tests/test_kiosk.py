"""The kiosk server in-process on the fake-clock rig."""

import pytest


async def test_a_fault_answers_with_a_json_error(rig, kiosk, caplog) -> None:
    async def broken() -> None:
        raise RuntimeError("disk on fire")

    rig.locker.reads.snapshot = broken  # the status reads the bank through it
    async with kiosk.get("/api/status") as response:
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "internal_error"
    assert "disk on fire" in caplog.text


async def test_status_counts_free_compartments(kiosk) -> None:
    async with kiosk.get("/api/status") as response:
        status = await response.json()
    assert status["free"] == {"S": 2, "M": 2, "L": 1}
    assert status["boards"]["cu0"]["online"] is True


async def test_a_stalled_reader_is_told_and_can_replay(rig, kiosk) -> None:
    async with kiosk.ws_connect("/api/events") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await rig.clock.drain()
        for n in range(1001):
            rig.locker.publish({"type": "flow.updated", "flow": {"n": n}})
        messages = []
        async for message in ws:
            messages.append(message.json())
        assert messages[-1] == {"type": "overflow"}
        assert ws.closed
    async with kiosk.ws_connect("/api/events?after=0") as ws:
        hello = await ws.receive_json()
        assert hello["replayed"] == rig.store.journal.last_seq()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"token": "LKR1.x"}, 409, "qr_not_enabled"),
        ({}, 400, "missing_field"),
        ({"code": "12345678", "token": "LKR1.a.b"}, 400, "missing_field"),
    ],
)
async def test_pickup_takes_a_code_or_a_token(kiosk, body, status, code) -> None:
    async with kiosk.post("/api/pickups", json=body) as response:
        assert (response.status, (await response.json())["error"]["code"]) == (status, code)


async def test_status_names_every_code_length_the_keypad_takes(rig, kiosk) -> None:
    async with kiosk.get("/api/status") as response:
        status = await response.json()
    assert (status["code_length"], status["code_lengths"]) == (8, [8])
    await rig.stored("PCL1", "S")
    # As if issued when the config asked for 6 digits: it stays typeable while stored.
    rig.store.db.conn.execute("UPDATE parcels SET code_length = 6")
    async with kiosk.get("/api/status") as response:
        status = await response.json()
    assert (status["code_length"], status["code_lengths"]) == (8, [6, 8])


async def test_status_follows_the_bank_between_requests(rig, kiosk) -> None:
    async def doors() -> set[str]:
        async with kiosk.get("/api/status") as response:
            return {comp["door"] for comp in (await response.json())["compartments"]}

    assert await doors() == {"closed"}
    rig.sim.board(0).faults.silent = True
    await rig.polls(3)
    assert await doors() == {"unknown"}
    rig.sim.board(0).faults.silent = False
    await rig.polls(1)
    assert await doors() == {"closed"}


async def test_status_says_whether_a_back_office_is_told(rig, kiosk) -> None:
    async with kiosk.get("/api/status") as response:
        status = await response.json()
    assert (rig.config.sync.url, status["back_office"]) == ("", False)
