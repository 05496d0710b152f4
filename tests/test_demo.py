"""The README's demo: ``lockerd run config/demo.toml`` with its simulators in the daemon."""

from tests.daemon import ROOT, Daemon


async def _person(daemon: Daemon, comp: str, action: str) -> dict:
    status, door = await daemon.call("POST", f"/api/demo/doors/{comp}/{action}")
    assert status == 200, door
    return door


async def test_demo_locker_end_to_end(tmp_path) -> None:
    async with Daemon(ROOT / "config" / "demo.toml", "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        async with daemon.http.get("/") as response:
            assert response.status == 200 and 'id="go-collect"' in await response.text()
        async with daemon.http.get("/static/i18n/en.json") as response:
            assert (await response.json())["home.collect"] == "Collect a parcel"

        _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
        token = login["token"]
        # An L parcel goes to the GPIO cabinet (C1 is the first L that is not low reach).
        _, flow = await daemon.call(
            "POST", "/api/dropoffs", {"barcode": "BIGBOX01", "size": "L"}, token
        )
        assert flow["compartment"] == "C1"
        # The demo's doors spring ajar as their latch releases (demo.door_springs):
        # the person only shuts them.
        await events.event("lock.pulsed", compartment="C1")
        await events.flow(flow["id"], "open")
        assert (await _person(daemon, "C1", "open"))["opened"]  # the spring has opened it
        await _person(daemon, "C1", "close")
        await events.flow(flow["id"], "stored")

        # An announced M parcel goes to the CU16 board on the pty.
        _, flow = await daemon.call("POST", "/api/dropoffs", {"barcode": "JJD0001"}, token)
        assert flow["compartment"] == "B2"
        await events.event("lock.pulsed", compartment="B2")
        await events.flow(flow["id"], "open")
        await _person(daemon, "B2", "close")
        await events.flow(flow["id"], "stored")

        _, messages = await daemon.call("GET", "/api/demo/messages")
        codes = {m["compartment_id"]: m["code"] for m in messages["messages"]}
        assert set(codes) == {"C1", "B2"}
        for comp in ("C1", "B2"):
            _, pickup = await daemon.call("POST", "/api/pickups", {"code": codes[comp]})
            await events.event("lock.pulsed", compartment=comp)
            await events.flow(pickup["id"], "open")
            await _person(daemon, comp, "close")
            await events.flow(pickup["id"], "collected")

        # Every door ends shut and latched: one shut during its pulse latches when it ends.
        bank = await daemon.sim_bank(
            lambda cells: all(c["sim"]["latched"] and not c["sim"]["open"] for c in cells)
        )
        assert {c["id"]: c["state"] for c in bank}["C1"] == "free"
        await events.close()
        assert await daemon.stop() == 0
    assert (tmp_path / "lockerd.db").exists() and (tmp_path / "device.key").exists()


async def test_the_demo_scanners_feed_the_scan_stream(tmp_path) -> None:
    async with Daemon(ROOT / "config" / "demo.toml", "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events()
        _, status = await daemon.call("GET", "/api/status")
        assert [(s["name"], s["type"], s["online"]) for s in status["scanners"]] == [
            ("camera", "camera", True),
            ("handheld", "serial", True),
        ]
        # The handheld module sends the courier's badge; the page would spend it on login.
        await daemon.call("POST", "/api/demo/scanners/handheld", {"text": "1234"})
        scan = (await events.wait_for(lambda m: m["type"] == "scan"))["scan"]
        assert scan["source"] == "handheld" and scan["kind"] == "label"
        _, login = await daemon.call("POST", "/api/courier/login", {"scan": scan["id"]})
        assert login["courier"]["id"] == "courier-1"

        # The camera decodes a label held up to it, once however long it stays in view.
        await daemon.call(
            "POST", "/api/demo/scanners/camera", {"text": "PKG77", "format": "code128"}
        )
        scan = (
            await events.wait_for(lambda m: m["type"] == "scan" and m["scan"]["source"] == "camera")
        )["scan"]
        assert scan["format"] == "code128"
        _, flow = await daemon.call("POST", "/api/dropoffs", {"scan": scan["id"]}, login["token"])
        assert (flow["barcode"], flow["state"]) == ("PKG77", "need_size")

        await events.close()


async def test_demo_scanner_requests_are_checked(tmp_path) -> None:
    async with Daemon(ROOT / "config" / "demo.toml", "--state-dir", str(tmp_path)) as daemon:
        for name, body, status, code in [
            ("camera", {"text": ""}, 400, "invalid_text"),
            ("camera", {"text": "X", "format": "morse"}, 400, "invalid_format"),
            ("camera", {"text": "ABC", "format": "ean13"}, 400, "invalid_text"),
            ("camera", {}, 400, "missing_field"),
            ("tv", {"text": "X"}, 404, "unknown_scanner"),
        ]:
            answer_status, answer = await daemon.call("POST", f"/api/demo/scanners/{name}", body)
            assert (answer_status, answer["error"]["code"]) == (status, code), body
        async with daemon.http.get("/api/demo/qr.svg", params={"text": "LKR1.a.b"}) as response:
            assert response.content_type == "image/svg+xml"
            assert (await response.text()).lstrip().startswith("<")


async def test_the_public_sends_a_parcel_and_its_carriers_courier_collects_it(tmp_path) -> None:
    async with Daemon(ROOT / "config" / "demo.toml", "--state-dir", str(tmp_path)) as daemon:
        events = await daemon.events(after=0)
        status, issued = await daemon.call("POST", "/api/demo/send-codes", {"size": "M"})
        assert status == 201, issued
        status, flow = await daemon.call("POST", "/api/sends", {"code": issued["code"]})
        assert (status, flow["kind"], flow["state"]) == (201, "send", "opening"), flow
        comp = flow["compartment"]
        await events.event("lock.pulsed", compartment=comp)
        await events.flow(flow["id"], "open")
        await _person(daemon, comp, "put")
        await _person(daemon, comp, "close")
        await events.flow(flow["id"], "stored")
        deposited = await events.event("outbound.deposited", compartment=comp)
        assert deposited["data"]["reference"] == issued["reference"]

        status, again = await daemon.call("POST", "/api/sends", {"code": issued["code"]})
        assert (status, again["error"]["code"]) == (403, "send_code_used")

        _, login = await daemon.call("POST", "/api/courier/login", {"code": "1234"})
        status, listed = await daemon.call("GET", "/api/outbound", None, login["token"])
        assert status == 200 and [p["compartment_id"] for p in listed["parcels"]] == [comp]
        outbound = listed["parcels"][0]["id"]
        status, collect = await daemon.call(
            "POST", "/api/outbound", {"outbound": outbound}, login["token"]
        )
        assert (status, collect["kind"], collect["compartment"]) == (201, "collect", comp)
        await events.flow(collect["id"], "open")
        await _person(daemon, comp, "take")
        await _person(daemon, comp, "close")
        await events.flow(collect["id"], "collected")
        await events.event("outbound.collected", courier="courier-1", carrier="DHL")
        _, listed = await daemon.call("GET", "/api/outbound", None, login["token"])
        assert listed["parcels"] == []
        bank = await daemon.sim_bank(lambda comps: True)
        assert next(c for c in bank if c["id"] == comp)["state"] == "free"
        await events.close()
        assert await daemon.stop() == 0
