"""The kiosk page in a real headless Chromium (Debian's ``chromium``) driven by Playwright.

Each test starts ``lockerd run`` on the demo config as a process and drives
the page as a person would: taps, the simulated doors of the demo panel, the
simulated scanners. Screenshots of every screen go to
``test-artifacts/kiosk/``; every screenshot also checks that each visible
button is at least 48 px square and has an accessible name, and
:meth:`Kiosk.fits` that a screen fits the display with nothing scrolled.
"""

from __future__ import annotations

import base64
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

#: The smallest text the kiosk shows, in CSS px: what a person reads to act (a button's
#: words, an instruction, a message, the door map's labels). docs/kiosk-api.md says so.
FLOOR_PX = 16

#: The ways a screen is shown: the access switches' classes on ``<html>`` (larger text,
#: high contrast, both), and the demo's layout (the demo panel beside or below the kiosk,
#: as ``lockerd run config/demo.toml`` shows it) in plain and in larger text.
MODES: dict[str, tuple[str, bool]] = {
    "plain": ("", False),
    "large": ("large", False),
    "contrast": ("contrast", False),
    "large-contrast": ("large contrast", False),
    "demo": ("", True),
    "demo-large": ("large", True),
}

#: The modes the default suite shows each screen in: plain, and the tightest of each
#: kind (larger text with high contrast; the demo's layout in larger text). The slow
#: group shows the other three, so that a run of both covers every mode of ``MODES``.
DEFAULT_MODES = ["plain", "large-contrast", "demo-large"]


def fit_modes_of(markexpr: str) -> list[str]:
    """The modes a run with ``-m markexpr`` checks: the default ones in the default suite,
    the others in the slow group, all otherwise."""
    rest = [mode for mode in MODES if mode not in DEFAULT_MODES]
    return {"not slow": DEFAULT_MODES, "slow": rest}.get(markexpr.strip(), list(MODES))


def fit_mode_of(name: str) -> str | None:
    """The mode of a fit screenshot named ``fit-<lang>-<mode>-<screen>-<size>.png``."""
    parts = name.split("-", 2)
    if len(parts) < 3 or parts[0] != "fit":
        return None
    fitting = [mode for mode in MODES if parts[2].startswith(mode + "-")]
    return max(fitting, key=len, default=None)  # large-contrast, not large


#: What does not fit on the screen shown: the page scrolls (on a locker) or is scrolled;
#: the kiosk's own box is scrolled; an element is outside the display or the kiosk's box;
#: a text is smaller than ``floor`` px or has a word broken across lines (a break after a
#: hyphen is a word's end); an actionable
#: element is under 48 px, unnamed, too small for its text, or covered or clipped (one
#: of five points on it, its centre and four towards its corners, is not its own).
MISFITS = r"""({ demo, floor }) => {
  const [width, height] = [window.innerWidth, window.innerHeight];
  const page = document.scrollingElement;
  const kiosk = document.getElementById("kiosk");
  const wrong = [];
  if (!demo && (page.scrollWidth > width || page.scrollHeight > height)) {
    wrong.push(`the page is ${page.scrollWidth}x${page.scrollHeight}`);
  }
  if (window.scrollX || window.scrollY) wrong.push(`scrolled to ${scrollX},${scrollY}`);
  if (kiosk.scrollLeft || kiosk.scrollTop) {
    wrong.push(`the kiosk is scrolled to ${kiosk.scrollLeft},${kiosk.scrollTop}`);
  }
  const own = kiosk.getBoundingClientRect();
  const [left, top] = [Math.max(0, own.left), Math.max(0, own.top)];
  const [right, bottom] = [Math.min(width, own.right), Math.min(height, own.bottom)];
  const shown = [...document.querySelectorAll("#kiosk *")]
    .filter((el) => el.getClientRects().length && !el.closest(".sr-only"));
  const describe = (el) =>
    `${el.tagName.toLowerCase()}#${el.id} "${el.textContent.trim().slice(0, 30)}"`;
  for (const el of shown) {
    const r = el.getBoundingClientRect();
    const what = describe(el);
    const out = r.left < left - 0.5 || r.top < top - 0.5;
    if (out || r.right > right + 0.5 || r.bottom > bottom + 0.5) {
      const box = [r.left, r.top, r.right, r.bottom].map(Math.round);
      wrong.push(`${what} is outside: ${box[0]},${box[1]} to ${box[2]},${box[3]}`);
    }
    for (const node of el.childNodes) {
      if (node.nodeType !== Node.TEXT_NODE || !node.data.trim()) continue;
      const size = parseFloat(getComputedStyle(el).fontSize);
      if (size < floor - 0.05) wrong.push(`${what}: its text is ${size.toFixed(1)} px`);
      for (const word of node.data.matchAll(/[^\s-]+/g)) {  // a hyphen may end a line
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        const lines = new Set([...range.getClientRects()].map((b) => Math.round(b.top)));
        if (lines.size > 1) wrong.push(`${what}: "${word[0]}" is broken across lines`);
      }
    }
    if (!el.matches("button, input, select, textarea, a[href], [role=button]")) continue;
    const name = (el.getAttribute("aria-label") || el.textContent).trim();
    if (r.width < 48 || r.height < 48 || !name) {
      wrong.push(`${what} is ${Math.round(r.width)}x${Math.round(r.height)}, named "${name}"`);
    }
    if (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1) {
      wrong.push(`${what}: its text overflows it`);
    }
    const points = [[0.5, 0.5], [0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]];
    for (const [x, y] of points) {
      const hit = document.elementFromPoint(r.left + r.width * x, r.top + r.height * y);
      if (!hit || !el.contains(hit)) {
        const by = hit ? ` by ${describe(hit)}` : "";
        wrong.push(`${what} is covered or clipped at ${x},${y}${by}`);
        break;
      }
    }
  }
  return wrong;
}"""

#: Show the page in one of ``MODES`` (the demo panel hidden unless the mode is the demo's).
SHOW_MODE = """([classes, demo, production]) => {
  let style = document.getElementById("fit-production");
  if (!style) {
    style = Object.assign(document.createElement("style"), { id: "fit-production" });
    style.textContent = production;
    document.head.appendChild(style);
  }
  style.disabled = demo;
  document.documentElement.className = classes;
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
        #: The ways ``fits`` shows each screen at those sizes (``MODES``), and the classes
        #: ``<html>`` gets back after them (the switches pressed in the walk: none).
        self.modes: list[str] = ["plain"]
        self.classes = ""
        #: The screens ``fits`` checked at ``sizes``, in order.
        self.walked: list[str] = []
        self.cdp: Any = None
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    async def open(self) -> Kiosk:
        self.cdp = await self.page.context.new_cdp_session(self.page)
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

    async def fits(self, name: str, keep: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Keep a screenshot of the display, and check that the screen shown fits it; with
        ``sizes``, the screen in each of ``modes`` at each of those displays in turn (the
        page lays itself out by CSS alone, so a resized viewport is the screen as that
        display shows it), kept as ``fit-<lang>-<mode>-<name>-<size>.png``. A screen that
        lasts a few seconds (a message over the bar) has ``keep``: called before and after
        each check, it brings the screen back when it has gone and says whether it had (a
        check it did not last through is done again)."""
        if not self.sizes:
            return await self._fits(name, demo=False)
        language = await self.page.evaluate("document.documentElement.lang")
        self.walked.append(name)
        for mode in self.modes:
            classes, demo = MODES[mode]
            await self.page.evaluate(SHOW_MODE, [classes, demo, PRODUCTION])
            for width, height in self.sizes:
                await self.page.set_viewport_size({"width": width, "height": height})
                shot = f"fit-{language}-{mode}-{name}-{width}x{height}"
                for _ in range(3):
                    if keep is not None:
                        await keep()
                    await self._fits(shot, demo)
                    if keep is None or await keep():
                        break
                else:
                    raise AssertionError(f"{shot}: the screen never lasted through a check")
        await self.page.evaluate(SHOW_MODE, [self.classes, False, PRODUCTION])

    async def _fits(self, name: str, demo: bool) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # The DevTools screenshot, fast to encode: a walk keeps a thousand of them.
        shot = await self._devtools().send(
            "Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True}
        )
        (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
        misfits = await self.page.evaluate(MISFITS, {"demo": demo, "floor": FLOOR_PX})
        assert not misfits, f"{name}: does not fit: {misfits}"
        assert not self.errors, f"{name}: page errors: {self.errors}"

    def _devtools(self) -> Any:
        if self.cdp is None:
            raise AssertionError("Kiosk.open() first")
        return self.cdp

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
