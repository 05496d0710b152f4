"""Accessibility switches on the home screen, as the European Accessibility Act asks of
self-service terminals: high contrast, larger text, more time, spoken prompts."""

from __future__ import annotations

from typing import Any

from tests.browser import PRODUCTION, Kiosk, demo_kiosk

SMALL = (800, 480)

#: The browser's speech synthesis, replaced by a recorder of what it was asked to say.
SPEECH = """
window.spoken = [];
class Utterance { constructor(text) { this.text = text; this.lang = ""; } }
Object.defineProperty(window, "SpeechSynthesisUtterance", { value: Utterance, configurable: true });
Object.defineProperty(window, "speechSynthesis", {
  configurable: true,
  value: { speak: (u) => window.spoken.push([u.lang, u.text]), cancel: () => {} },
});
"""


async def _recording_speech(page: Any) -> None:
    await page.add_init_script(SPEECH)


async def _switch(kiosk: Kiosk, name: str) -> None:
    await kiosk.tap(name)
    assert await kiosk.button(name).get_attribute("aria-pressed") == "true"


async def test_high_contrast_and_larger_text_change_the_page(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser, SMALL) as kiosk:
        page = kiosk.page
        await page.add_style_tag(content=PRODUCTION)
        looks = """() => {
            const title = getComputedStyle(document.getElementById("go-courier"));
            return [document.documentElement.className, title.backgroundColor, title.fontSize];
        }"""
        plain = await page.evaluate(looks)
        await _switch(kiosk, "High contrast")
        contrast = await page.evaluate(looks)
        assert "contrast" in contrast[0] and contrast[1] == "rgb(0, 0, 0)" != plain[1]
        await _switch(kiosk, "Larger text")
        large = await page.evaluate(looks)
        assert "large" in large[0] and float(large[2][:-2]) >= 1.2 * float(plain[2][:-2])
        await kiosk.fits("access-800x480-home")
        # A PIN typed in larger text in high contrast still fits the small display.
        await kiosk.tap("Collect a parcel")
        await kiosk.screen("pin")
        await kiosk.fits("access-800x480-pin")
        await kiosk.tap("Back")  # back at the start: the person's switches stay
        assert await page.evaluate(looks) == large
        await kiosk.tap("Courier")
        await kiosk.screen("login")
        await kiosk.fits("access-800x480-login")
        await kiosk.tap("Back")
        await kiosk.log_in()
        await kiosk.fits("access-800x480-courier")
        await kiosk.tap("Finish")  # the visit is over: the next person gets the plain page
        await kiosk.screen("home")
        assert await page.evaluate(looks) == plain
        assert await kiosk.button("High contrast").get_attribute("aria-pressed") == "false"


async def test_more_time_lengthens_the_idle_timeout(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser, SMALL, lambda page: page.clock.install()) as kiosk:
        page = kiosk.page
        await _switch(kiosk, "More time")
        await kiosk.tap("Collect a parcel")
        await kiosk.type_on("pin-pad", "12")
        await page.clock.fast_forward(61_000)  # the idle time (kiosk.idle_s = 60) has passed
        await page.clock.fast_forward(2_000)
        assert await page.locator("#screen-pin").is_visible()
        assert await kiosk.text("#pin-display") == "12"
        await page.clock.fast_forward(120_000)  # three times the idle time
        await kiosk.screen("home")
        assert await kiosk.button("More time").get_attribute("aria-pressed") == "false"


async def test_spoken_prompts_say_each_screen(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser, SMALL, _recording_speech) as kiosk:
        page = kiosk.page
        assert await page.evaluate("window.spoken") == []  # silent until asked
        await _switch(kiosk, "Read aloud")
        [(lang, text)] = await page.evaluate("window.spoken")
        assert lang == "en" and text.startswith("To collect a parcel, touch Collect a parcel")
        await kiosk.tap("Collect a parcel")
        await kiosk.screen("pin")
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert lang == "en"
        assert text == (
            "Type your pickup code. The code has 8 digits. It is in the message you received."
            " You can also show your QR code to the camera."
        )
        await kiosk.tap("Back")
        await kiosk.tap("Deutsch")
        await kiosk.tap("Paket abholen")
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert (lang, text.split(" Der Code")[0]) == ("de", "Abholcode eingeben.")
        await kiosk.type_on("pin-pad", "123")
        await kiosk.tap("Mein Fach öffnen")
        await kiosk.screen("message")
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert (lang, text) == (
            "de",
            "Entschuldigung. Ein Abholcode hat 8 Ziffern. Bitte prüfen und erneut versuchen.",
        )
        # Switched off, the page is silent again.
        await kiosk.tap("OK")
        await kiosk.tap("Zurück")
        await kiosk.tap("Vorlesen")
        said = len(await page.evaluate("window.spoken"))
        await kiosk.tap("Paket abholen")
        await kiosk.screen("pin")
        assert len(await page.evaluate("window.spoken")) == said
