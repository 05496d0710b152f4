"""The scan stream: scans held by id, never broadcast as text, spent once by the kiosk."""

from __future__ import annotations

import aiohttp
import pytest

from drivers.scanner.base import Scan
from lockerd.clock import FakeClock
from lockerd.errors import BadRequest, NotFound
from lockerd.kiosk.server import KioskServer
from lockerd.scanning import HELD_MAX, HELD_S, ScanHub


@pytest.fixture
def hub():
    published: list[dict] = []
    hub = ScanHub(FakeClock(), published.append)
    hub.published = published
    return hub


def test_a_scan_is_announced_without_its_text_and_taken_once(hub) -> None:
    scan_id = hub.add(Scan("  LKR1.abc.def\r\n", "camera", "qr"))
    assert hub.published == [
        {
            "type": "scan",
            "scan": {"id": scan_id, "source": "camera", "format": "qr", "kind": "pickup_token"},
        }
    ]
    assert "LKR1" not in repr(hub.published)
    assert hub.take(scan_id) == "LKR1.abc.def"
    with pytest.raises(NotFound) as info:
        hub.take(scan_id)
    assert info.value.code == "unknown_scan"


def test_a_label_is_announced_as_a_label(hub) -> None:
    hub.add(Scan("JJD0001", "handheld"))
    assert hub.published[0]["scan"]["kind"] == "label"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\r\n", "empty"),
        ("]C1\x1d0012345", "not printable ASCII"),
        ("caf\xe9", "not printable ASCII"),
        ("9" * 1025, "longer than 1024"),
    ],
)
def test_an_unusable_scan_is_refused_with_its_reason_and_not_held(hub, text, reason) -> None:
    assert hub.add(Scan(text, "handheld")) is None
    [event] = hub.published
    assert event["type"] == "scan.rejected" and reason in event["reason"]
    assert hub.rejected == 1


async def test_an_unread_scan_is_forgotten(hub) -> None:
    scan_id = hub.add(Scan("JJD0001", "handheld"))
    await hub.clock.advance(HELD_S + 1)
    with pytest.raises(NotFound):
        hub.take(scan_id)


def test_only_the_newest_scans_are_held(hub) -> None:
    ids = [hub.add(Scan(f"PKG{n:04}", "handheld")) for n in range(HELD_MAX + 1)]
    with pytest.raises(NotFound):
        hub.take(ids[0])
    assert hub.take(ids[-1]) == f"PKG{HELD_MAX:04}"


@pytest.mark.parametrize("bad", [12, None, "zz", "0123456789abcdef0"])
def test_a_malformed_scan_id_is_a_bad_request(hub, bad) -> None:
    with pytest.raises(BadRequest):
        hub.take(bad)


# -- the kiosk endpoints that spend a scan ------------------------------------------------


@pytest.fixture
async def kiosk(rig):
    server = KioskServer(rig.config, rig.locker, rig.hw)
    url = await server.start()
    async with aiohttp.ClientSession(base_url=url) as http:
        http.scans = server.scans
        yield http
    await server.stop()


async def post(http, path, body, token=None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_a_badge_scan_logs_a_courier_in(kiosk) -> None:
    scan_id = kiosk.scans.add(Scan("4321", "camera", "qr"))
    status, answer = await post(kiosk, "/api/courier/login", {"scan": scan_id})
    assert status == 200 and answer["courier"]["id"] == "c1"


async def test_a_label_scan_starts_a_dropoff(kiosk) -> None:
    _, login = await post(kiosk, "/api/courier/login", {"code": "4321"})
    scan_id = kiosk.scans.add(Scan("UNKNOWN42", "handheld"))
    status, flow = await post(kiosk, "/api/dropoffs", {"scan": scan_id}, login["token"])
    assert (status, flow["state"], flow["barcode"]) == (201, "need_size", "UNKNOWN42")


async def test_a_label_scan_is_not_spent_without_a_courier(kiosk) -> None:
    scan_id = kiosk.scans.add(Scan("UNKNOWN42", "handheld"))
    status, answer = await post(kiosk, "/api/dropoffs", {"scan": scan_id})
    assert (status, answer["error"]["code"]) == (401, "session_expired")
    assert kiosk.scans.take(scan_id) == "UNKNOWN42"


@pytest.mark.parametrize(
    ("text", "status", "code"),
    [
        ("LKR1.abc.def", 409, "qr_not_enabled"),  # a token goes the token way
        ("00000000", 403, "wrong_code"),  # digits go the typed-code way
        ("JJD0001", 400, "invalid_code"),
    ],
)
async def test_a_scan_at_pickup_is_a_token_or_a_code(kiosk, text, status, code) -> None:
    scan_id = kiosk.scans.add(Scan(text, "camera", "qr"))
    answer_status, answer = await post(kiosk, "/api/pickups", {"scan": scan_id})
    assert (answer_status, answer["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/pickups", {"code": "12345678", "scan": "0123456789abcdef"}),
        ("/api/courier/login", {}),
        ("/api/courier/login", {"code": "4321", "scan": "0123456789abcdef"}),
    ],
)
async def test_exactly_one_of_typed_or_scanned(kiosk, path, body) -> None:
    status, answer = await post(kiosk, path, body)
    assert (status, answer["error"]["code"]) == (400, "missing_field")


async def test_a_spent_scan_id_is_refused(kiosk) -> None:
    scan_id = kiosk.scans.add(Scan("4321", "camera"))
    await post(kiosk, "/api/courier/login", {"scan": scan_id})
    status, answer = await post(kiosk, "/api/courier/login", {"scan": scan_id})
    assert (status, answer["error"]["code"]) == (404, "unknown_scan")


async def test_an_empty_typed_code_is_not_mistaken_for_a_scan(kiosk) -> None:
    status, answer = await post(kiosk, "/api/courier/login", {"code": ""})
    assert (status, answer["error"]["code"]) == (400, "invalid_code")
