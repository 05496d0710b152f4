"""Shared fixtures: a whole locker on a fake clock, the kiosk page's browser, the sync rig."""

from __future__ import annotations

import aiohttp
import pytest

from lockerd.kiosk.server import KioskServer
from lockerd.sync.backoffice import ReferenceBackOffice
from tests import event_schemas, fuzzing
from tests.browser import ARTIFACTS, browser, fit_mode_of, fit_modes_of  # noqa: F401 (a fixture)
from tests.rig import Rig, bank_config
from tests.sync_rig import office, synced, synced_any  # noqa: F401 (fixtures)


@pytest.fixture
async def rig(tmp_path):
    locker = await Rig(bank_config(tmp_path)).start()
    yield locker
    await locker.stop()


@pytest.fixture
async def kiosk(rig):
    """The kiosk's HTTP API served over the rig's locker: a client session at its URL."""
    server = KioskServer(rig.config, rig.locker, rig.hw)
    url = await server.start()
    async with aiohttp.ClientSession(base_url=url) as http:
        yield http
    await server.stop()


event_schemas.install()
_receive = ReferenceBackOffice._store


def _received(server, record, events):  # type: ignore[no-untyped-def]
    for event in events:  # as sent, with the pickup code
        event_schemas.seen(event["type"], event["data"])
    return _receive(server, record, events)


ReferenceBackOffice._store = _received  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _events_match_their_schemas():
    """Every event a test writes or sends matches docs/sync-v1.openapi.json."""
    with event_schemas.collected() as events:
        yield
    wrong = event_schemas.checked(events)
    assert not wrong, "events that do not match their schema:\n" + "\n".join(wrong[:20])


def pytest_sessionstart(session) -> None:  # type: ignore[no-untyped-def]
    """The fit walk's screenshots are this run's: the old ones of the modes this run
    checks go, once, on the controller (a pytest-xdist worker starts its session after
    the controller's, as tests run). The slow group's are kept by the default suite's
    run, and the other way round, so that CI ends with every mode's."""
    if not hasattr(session.config, "workerinput"):
        modes = fit_modes_of(session.config.getoption("markexpr") or "")
        for old in ARTIFACTS.glob("fit-*.png"):
            if fit_mode_of(old.name) in modes or fit_mode_of(old.name) is None:
                old.unlink(missing_ok=True)  # another run may have removed it


def pytest_sessionfinish(session) -> None:  # type: ignore[no-untyped-def]
    """A pytest-xdist worker hands the event types and fuzz cases it saw to the controller."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["event_types"] = sorted(event_schemas.SEEN)
        session.config.workeroutput["fuzz_cases"] = fuzzing.BY_SURFACE


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # type: ignore[no-untyped-def]
    output = getattr(node, "workeroutput", {})
    event_schemas.SEEN.update(output.get("event_types", []))
    for surface, count in output.get("fuzz_cases", {}).items():
        fuzzing.BY_SURFACE[surface] = fuzzing.BY_SURFACE.get(surface, 0) + count


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if fuzzing.BY_SURFACE:
        cases = fuzzing.BY_SURFACE
        terminalreporter.write_line(
            f"fuzz: {sum(cases.values())} cases over {len(cases)} properties"
            f" ({fuzzing.SLOW_TOTAL} wanted from the slow group)"
        )
        for surface, count in sorted(cases.items()):
            terminalreporter.write_line(f"  {count:>7}  {surface}")
    if event_schemas.SEEN:
        typed = event_schemas.schema_types()
        terminalreporter.write_line(
            f"event schemas: {len(typed)} types have one; this run wrote"
            f" {len(event_schemas.SEEN & typed)} of them"
            f" ({', '.join(sorted(typed - event_schemas.SEEN)) or 'none'} not seen)"
        )
