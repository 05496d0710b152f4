"""The kiosk page in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

Each test starts ``lockerd run`` on the demo config as a process and drives
the page as a person would: taps, the simulated doors of the demo panel, the
simulated scanners. Screenshots of every screen go to
``test-artifacts/kiosk/``; every screenshot also checks that each visible
button is at least 48 px square and has an accessible name, and
:meth:`Kiosk.fits` that a screen fits the display with nothing scrolled.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import ROOT, Daemon

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = ROOT / "test-artifacts" / "kiosk"
#: The page as a real locker shows it: no demo panel beside the kiosk.
PRODUCTION = "#demo { display: none !important; }"

#: What does not fit on the screen shown: the page scrolls or is scrolled; an element is
#: outside the viewport; an actionable one is under 48 px, unnamed, too small for its
#: text, or covered or clipped (the point at its centre is not its own).
MISFITS = """() => {
  const [width, height] = [window.innerWidth, window.innerHeight];
  const page = document.scrollingElement;
  const wrong = [];
  if (page.scrollWidth > width || page.scrollHeight > height) {
    wrong.push(`the page is ${page.scrollWidth}x${page.scrollHeight}`);
  }
  if (window.scrollX || window.scrollY) wrong.push(`scrolled to ${scrollX},${scrollY}`);
  const shown = [...document.querySelectorAll("#kiosk *")]
    .filter((el) => el.getClientRects().length && !el.closest(".sr-only"));
  for (const el of shown) {
    const r = el.getBoundingClientRect();
    const what = `${el.tagName.toLowerCase()}#${el.id} "${el.textContent.trim().slice(0, 30)}"`;
    if (r.left < -0.5 || r.top < -0.5 || r.right > width + 0.5 || r.bottom > height + 0.5) {
      const box = [r.left, r.top, r.right, r.bottom].map(Math.round);
      wrong.push(`${what} is outside: ${box[0]},${box[1]} to ${box[2]},${box[3]}`);
    }
    if (!el.matches("button, input, select, textarea, a[href], [role=button]")) continue;
    const name = (el.getAttribute("aria-label") || el.textContent).trim();
    if (r.width < 48 || r.height < 48 || !name) {
      wrong.push(`${what} is ${Math.round(r.width)}x${Math.round(r.height)}, named "${name}"`);
    }
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
      wrong.push(`${what}: its text overflows it`);
    }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !el.contains(hit)) wrong.push(`${what} is covered or clipped`);
  }
  return wrong;
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip("no Chromium here: apt install chromium (.ci/run installs it under CI=true)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


def demo_config(tmp_path: Path, **values: Any) -> Path:
    """config/demo.toml with some ``key = value`` lines changed (each key must be there once)."""
    text = (ROOT / "config" / "demo.toml").read_text()
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {value} ", text)
        assert count == 1, key
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return path


@asynccontextmanager
async def demo_kiosk(
    tmp_path: Path,
    browser: Any,
    size: tuple[int, int] = (1280, 900),
    before: Callable[[Any], Awaitable[Any]] | None = None,
) -> AsyncIterator[Kiosk]:
    """The demo locker's page, in a browser window of ``size``; ``before(page)`` is done
    before the page is opened (a clock installed, a script added)."""
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
        if before is not None:
            await before(page)
        yield await Kiosk(page, daemon).open()


class Kiosk:
    """The page of a running daemon, with the gestures a person makes."""

    def __init__(self, page: Any, daemon: Daemon):
        self.page = page
        self.daemon = daemon
        self.errors: list[str] = []
        #: The displays ``fits`` checks each screen at (none: the page's own viewport).
        self.sizes: list[tuple[int, int]] = []
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def open(self) -> Kiosk:
        await self.page.goto(self.daemon.url)
        await self.page.wait_for_selector("body[data-ready=true]")
        return self

    def button(self, name: str, within: str = "body") -> Any:
        return self.page.locator(within).get_by_role("button", name=name, exact=True)

    async def tap(self, name: str, within: str = "body") -> None:
        await self.button(name, within).click()

    async def type_on(self, pad: str, text: str) -> None:
        for char in text:
            await self.tap(char, f"#{pad}")

    async def log_in(self, code: str = "1234") -> None:
        """A courier logs in on the keypad (the demo's courier code by default)."""
        await self.tap("Courier")
        await self.type_on("login-pad", code)
        await self.tap("Log in")
        await self.screen("courier")

    async def screen(self, name: str) -> None:
        await self.page.wait_for_selector(f"#screen-{name}:not([hidden])")

    async def text(self, selector: str) -> str:
        return str(await self.page.locator(selector).inner_text())

    async def shows(self, selector: str, text: str | re.Pattern[str]) -> None:
        """Wait until ``selector`` shows ``text`` (a regex: contains a match)."""
        from playwright.async_api import expect

        await expect(self.page.locator(selector)).to_have_text(text)

    async def keep_texts(self, selector: str) -> None:
        """From now on, keep every text ``selector`` shows, however briefly (``texts_kept``)."""
        await self.page.evaluate(
            """(selector) => {
              const kept = (window.keptTexts = window.keptTexts || {});
              kept[selector] = [];
              new MutationObserver((records) => {
                for (const record of records) {
                  for (const node of record.addedNodes) kept[selector].push(node.textContent);
                }
              }).observe(document.querySelector(selector), { childList: true });
            }""",
            selector,
        )

    async def texts_kept(self, selector: str) -> list[str]:
        return list(await self.page.evaluate("(selector) => window.keptTexts[selector]", selector))

    async def person(self, compartment: str, action: str) -> dict[str, Any]:
        """Someone at the bank opens or closes a door (the demo panel's buttons); what the
        simulator answered, once it has (``opened``, ``open``, ``pulling``, ...). "Open"
        takes the handle and keeps pulling: a latched door opens at the next pulse."""
        path = f"/api/demo/doors/{compartment}/{action}"
        async with self.page.expect_response(lambda r: r.url.endswith(path)) as answer:
            await self.tap(f"{action.capitalize()} {compartment}", "#grid")
        return dict(await (await answer.value).json())

    async def opened_door(self) -> str:
        """The compartment the door screen shows."""
        await self.screen("door")
        return await self.text("#door-map .here")

    async def fits(self, name: str) -> None:
        """Keep a screenshot of the display, and check that the screen shown fits it; with
        ``sizes``, the same screen at each of those displays in turn (the page lays itself
        out by CSS alone, so a resized viewport is the screen as that display shows it)."""
        if not self.sizes:
            await self._fits(name)
        for width, height in self.sizes:
            await self.page.set_viewport_size({"width": width, "height": height})
            await self._fits(f"{name}-{width}x{height}")

    async def _fits(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        misfits = await self.page.evaluate(MISFITS)
        assert not misfits, f"{name}: does not fit: {misfits}"
        assert not self.errors, f"{name}: page errors: {self.errors}"

    async def snap(self, name: str) -> None:
        """Keep a screenshot, and check every visible button is big enough and named."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        buttons = await self.page.evaluate(
            """() => [...document.querySelectorAll("button")]
                .filter((b) => b.offsetParent !== null)
                .map((b) => {
                  const r = b.getBoundingClientRect();
                  const name = (b.getAttribute("aria-label") || b.textContent).trim();
                  return {name, width: r.width, height: r.height};
                })"""
        )
        small = [b for b in buttons if b["width"] < 48 or b["height"] < 48 or not b["name"]]
        assert not small, f"{name}: buttons too small or unnamed: {small}"
        assert not self.errors, f"{name}: page errors: {self.errors}"
