"""lockerctl's exit status and words where something goes wrong: a sync that fails, a
daemon that goes away mid-answer, a bad argument, an interrupt."""

from __future__ import annotations

from lockerd.lockerctl import local_time
from tests.ctl_rig import control


async def test_sync_push_exits_0_only_when_the_sync_succeeded(synced) -> None:
    s = synced
    async with control(s.rig, s.sync) as ctl:
        code, out, err = await ctl("sync", "--push")
        assert (code, err) == (0, ""), err
        assert out.startswith(f"sync with {s.office.url}: ok; last success ")
        shown = await ctl.json("sync")
        assert s.sync.last_ok is not None and shown["last_ok"] == local_time(s.sync.last_ok)
        await s.away()
        code, out, err = await ctl("sync", "--push")
        assert code == 1, (out, err)
        assert out.startswith(f"sync with {s.office.url}: failing (")
        assert err == f"lockerctl: the sync did not succeed: {s.sync.last_error}\n"
