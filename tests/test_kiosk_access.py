"""Accessibility switches on the home screen, as the European Accessibility Act asks of
self-service terminals: high contrast, larger text, more time, spoken prompts."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import threading
import wave
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from lockerd import config as lockerd_config
from lockerd.errors import FlowError
from lockerd.kiosk import speech
from lockerd.kiosk.server import KioskServer
from tests.browser import PRODUCTION, Kiosk, demo_config, demo_kiosk
from tests.daemon import ROOT, Daemon
from tests.test_kiosk_courier import _store_low
from tests.test_kiosk_resident import _dead_end, _drop, _type_code

SMALL = (800, 480)

#: The browser's speech synthesis, with an English and a German voice, replaced by a
#: recorder of what it was asked to say.
SPEECH = """
window.spoken = [];
class Utterance { constructor(text) { this.text = text; this.lang = ""; } }
Object.defineProperty(window, "SpeechSynthesisUtterance", { value: Utterance, configurable: true });
Object.defineProperty(window, "speechSynthesis", {
  configurable: true,
  value: {
    speak: (u) => window.spoken.push([u.lang, u.text]), cancel: () => {},
    getVoices: () => [{ lang: "en-US", name: "en" }, { lang: "de-DE", name: "de" }],
  },
});
"""

#: Every audio the page starts and finishes playing: the event, its path and its text.
PLAYED = """
window.played = [];
for (const type of ["playing", "ended"]) {
  document.addEventListener(type, (event) => {
    const url = new URL(event.target.currentSrc);
    window.played.push([type, url.pathname, url.searchParams.get("text")]);
  }, true);
}
"""

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="no espeak-ng here: apt install espeak-ng (.ci/run installs it under CI=true)",
)

#: The PIN screen as it is said: its words, then its buttons.
PIN_PARTS = [
    "Type your pickup code.",
    "The code has 8 digits. It is in the message you received.",
    "You can also show your QR code to the camera.",
    "Back.",
    "Open my compartment.",
]


async def _recording_speech(page: Any) -> None:
    await page.add_init_script(SPEECH)


async def _settled(page: Any) -> None:
    """Wait until the page has looked at what it shows now (access.js looks in a timeout
    after each change; this one runs after it)."""
    await page.evaluate("new Promise((done) => setTimeout(done, 0))")


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
        await _settled(page)
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert lang == "en"
        assert text == " ".join(PIN_PARTS)  # what it says, then the choices it offers
        await kiosk.tap("Back")
        await kiosk.tap("Deutsch")
        await kiosk.tap("Paket abholen")
        await kiosk.screen("pin")
        await _settled(page)
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert (lang, text.split(" Der Code")[0]) == ("de", "Abholcode eingeben.")
        await kiosk.type_on("pin-pad", "123")
        await kiosk.tap("Mein Fach öffnen")
        await kiosk.screen("message")
        await _settled(page)
        lang, text = (await page.evaluate("window.spoken"))[-1]
        assert (lang, text) == (
            "de",
            "Entschuldigung. Ein Abholcode hat 8 Ziffern. Bitte prüfen und erneut versuchen. OK.",
        )
        # Switched off, the page is silent again.
        await kiosk.tap("OK")
        await kiosk.tap("Zurück")
        await kiosk.tap("Vorlesen")
        said = len(await page.evaluate("window.spoken"))
        await kiosk.tap("Paket abholen")
        await kiosk.screen("pin")
        await _settled(page)
        assert len(await page.evaluate("window.spoken")) == said


async def _played(page: Any, text: str) -> list[list[str]]:
    """Wait until the page has played ``text`` to its end; all it played."""
    await page.wait_for_function(  # played as long as it takes to say
        "(text) => window.played.some(([type, , said]) => type === 'ended' && said === text)",
        arg=text,
        timeout=60_000,
    )
    return list(await page.evaluate("window.played"))


def _duration(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2)
        return audio.getnframes() / audio.getframerate()


@needs_espeak
async def test_read_aloud_plays_espeak_ng_audio_of_the_prompt_shown(tmp_path, browser) -> None:
    """Debian's Chromium has no voice: the page plays the daemon's espeak-ng audio of
    exactly the prompt shown, part by part, in the page's language."""
    asked: list[str] = []

    async def before(page: Any) -> None:
        await page.add_init_script(PLAYED)
        page.on("request", lambda r: asked.append(r.url) if "/api/speech/" in r.url else None)

    async with demo_kiosk(tmp_path, browser, SMALL, before) as kiosk:
        page = kiosk.page
        assert await page.evaluate("speechSynthesis.getVoices().length") == 0
        await _switch(kiosk, "Read aloud")
        await _played(
            page,
            "To collect a parcel, touch Collect a parcel and type your pickup"
            " code. Couriers touch Courier.",
        )
        await kiosk.tap("Collect a parcel")
        await kiosk.screen("pin")
        played = await _played(page, PIN_PARTS[-1])
        ended = [text for type_, _, text in played if type_ == "ended"]
        assert ended[-len(PIN_PARTS) :] == PIN_PARTS
        assert all(path == "/api/speech/en" for _, path, _ in played)
        said = [parse_qs(urlsplit(url).query)["text"][0] for url in asked]
        assert said[said.index(PIN_PARTS[0]) :] == PIN_PARTS  # each asked for once, in order

        # Each part is a WAV as long as its words take to say.
        for text in PIN_PARTS[:2]:
            url = f"{kiosk.daemon.url.rstrip('/')}/api/speech/en?text={text}"
            answer = await page.request.get(url)
            assert answer.status == 200 and answer.headers["content-type"] == "audio/wav"
            seconds = _duration(await answer.body())
            assert 1 <= len(text.split()) / seconds <= 5, (text, seconds)

        await kiosk.tap("Back")
        await kiosk.tap("Deutsch")
        await kiosk.tap("Paket abholen")
        played = await _played(page, "Abholcode eingeben.")
        assert played[-1][1] == "/api/speech/de"


@needs_espeak
async def test_only_texts_the_kiosk_shows_are_rendered(tmp_path) -> None:
    async with Daemon(demo_config(tmp_path), "--state-dir", str(tmp_path)) as daemon:
        assert await daemon.call("GET", "/api/speech") == (200, {"languages": ["de", "en"]})
        for lang, text, field in [
            ("en", "Hello world.", "text"),  # no text of the kiosk
            ("en", "Type your pickup code. And more.", "text"),
            ("en", "Compartment Z9 is open.", "text"),  # no such compartment
            ("en", "", "text"),
            ("en", "Back. " * 200, "text"),
            ("fr", "Back.", "lang"),
        ]:
            status, answer = await daemon.call("GET", f"/api/speech/{lang}?text={text}")
            assert status == 400, text
            assert answer["error"]["code"] == "invalid_query", text
            assert answer["error"]["field"] == field, text


async def test_read_aloud_is_not_offered_where_nothing_can_speak(tmp_path, browser) -> None:
    """No voice in the browser and no renderer (the program is missing): no "Read aloud"."""
    config = demo_config(tmp_path)
    text = config.read_text().replace("[kiosk]\n", '[kiosk]\nspeech_renderer = "/no/espeak-ng"\n')
    config.write_text(text)
    async with Daemon(config, "--state-dir", str(tmp_path)) as daemon:
        assert await daemon.call("GET", "/api/speech") == (200, {"languages": []})
        status, answer = await daemon.call("GET", "/api/speech/en?text=Back.")
        assert status == 400 and answer["error"]["field"] == "lang"
        page = await browser.new_page(viewport={"width": SMALL[0], "height": SMALL[1]})
        kiosk = await Kiosk(page, daemon).open()
        await page.add_style_tag(content=PRODUCTION)
        assert await page.evaluate("speechSynthesis.getVoices().length") == 0
        assert await kiosk.button("High contrast").is_visible()
        assert await kiosk.button("Read aloud").is_hidden()
        await kiosk.fits("access-no-speech-home")


def _spoken_since(spoken: list[list[str]], start: int) -> str:
    return " | ".join(text for _, text in spoken[start:])


async def _said(page: Any, part: str) -> list[list[str]]:
    await page.wait_for_function(
        "(part) => window.spoken.some(([, text]) => text.includes(part))", arg=part
    )
    return list(await page.evaluate("window.spoken"))


async def test_every_change_and_every_choice_is_said_once(tmp_path, browser) -> None:
    """Text changed on a screen (no new screen), a toast, a button offered: each is said
    once, when it appears, and so are the names of the buttons a screen offers."""
    async with demo_kiosk(tmp_path, browser, SMALL, _recording_speech) as kiosk:
        page, daemon = kiosk.page, kiosk.daemon
        stored = await _drop(daemon, "JJD0101", "JJD0102")
        (first, code), (second, _) = stored["JJD0101"], stored["JJD0102"]
        await _switch(kiosk, "Read aloud")
        await _type_code(kiosk, code)
        await kiosk.opened_door()
        await kiosk.shows("#door-title", f"Compartment {first} is open")
        await _said(page, f"Compartment {first} is open.")  # not "is opening…"
        await daemon.call("POST", f"/api/demo/doors/{first}/close")
        await _dead_end(kiosk, "Thank you!", "Parcel 1 of 2 is collected.")
        next_door = f"Open the next door ({second})."
        spoken = await _said(page, next_door)
        said = _spoken_since(spoken, 0)
        assert said.count(next_door) == 1 and "Parcel 1 of 2 is collected." in said
        assert "OK." in said

        # A toast over the screen: said once; what did not change is not said again.
        start = len(spoken)
        await daemon.call("POST", "/api/demo/scanners/handheld", {"text": " "})  # blank
        spoken = await _said(page, "That code could not be read.")
        assert _spoken_since(spoken, start) == "That code could not be read. Please try again."

        # The size chooser says each size and its dimensions; the no-low question its choices.
        await kiosk.tap("OK")  # the visit is over: "Read aloud" is off for the next person
        await _store_low(daemon, "LOW00001")
        await _store_low(daemon, "LOW00002")
        await _switch(kiosk, "Read aloud")
        await kiosk.log_in()
        await kiosk.tap("I need a lower compartment")
        await kiosk.type_on("barcode-pad", "BIG00002")
        start = len(await page.evaluate("window.spoken"))
        await kiosk.tap("Drop off")
        await kiosk.screen("size")
        spoken = await _said(page, "This parcel is not announced")
        said = _spoken_since(spoken, start)
        assert "For parcel BIG00002. S. height 90 · width 400 · depth 600 mm. M." in said, said
        assert said.endswith("Cancel.")
        start = len(spoken)
        await page.click("#sizes button[data-size=L]")
        await kiosk.screen("no-low")
        spoken = await _said(page, "No low compartment is free")
        assert _spoken_since(spoken, start) == (
            "No low compartment is free for size L."
            " C1 is free, higher up (column 3, row 1). Use it, or cancel. Cancel. Use C1."
        )


class _Renderer(speech.Renderer):
    """A renderer that writes a WAV of a second per 20 characters, and notes each render
    and the thread it ran in; ``gate`` holds renders until the test sets it."""

    def __init__(self) -> None:
        self.path = "fake"
        self.renders: list[tuple[str, str, str]] = []
        self.gate = threading.Event()

    def has_voice(self, lang: str) -> bool:
        return lang == "en"

    def render(self, lang: str, text: str) -> bytes:
        self.gate.wait(10)
        self.renders.append((lang, text, threading.current_thread().name))
        out = io.BytesIO()
        with wave.open(out, "wb") as audio:
            audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(22050)
            audio.writeframes(b"\0\0" * (22050 * len(text) // 20))
        return out.getvalue()


async def test_renders_run_once_per_text_off_the_loop_within_the_cache(monkeypatch) -> None:
    monkeypatch.setattr(speech, "CACHE_BYTES", 120_000)
    renderer = _Renderer()
    voice = speech.Speech(lockerd_config.load(ROOT / "config" / "demo.toml"), renderer)
    texts = ["Type your pickup code.", "Back.", "Open my compartment."]
    assert await voice.languages() == ["en"]
    asked = [asyncio.ensure_future(voice.audio("en", text)) for text in texts * 3]
    await asyncio.sleep(0)  # one step each: every text asked while the renders are held
    assert sorted(voice._pending) == sorted(("en", text) for text in texts)
    # At most MAX_PENDING texts wait for a render: one more is refused, and not queued.
    more = ["Sorry.", "OK.", "Cancel.", "Courier.", "Log in."]
    asked += [asyncio.ensure_future(voice.audio("en", text)) for text in more]
    await asyncio.sleep(0)
    with pytest.raises(FlowError) as refused:
        await voice.audio("en", "Finish.")
    assert refused.value.code == "too_fast" and len(voice._pending) == speech.MAX_PENDING
    renderer.gate.set()
    answers = await asyncio.gather(*asked)
    assert [text for _, text, _ in renderer.renders] == texts + more  # each rendered once
    assert {thread for _, _, thread in renderer.renders} == {"lockerd-speech_0"}
    assert answers[:3] == answers[3:6] == answers[6:9]
    assert voice._cached == sum(map(len, voice._cache.values())) <= 120_000
    assert ("en", "Type your pickup code.") not in voice._cache  # the oldest went first
    assert ("en", "Courier.") in voice._cache


async def test_the_speech_thread_ends_with_the_kiosk(rig) -> None:
    """A kiosk that stops leaves no speech worker behind (the daemon's threads all end)."""
    before = set(threading.enumerate())
    server = KioskServer(rig.config, rig.locker, rig.hw)
    url = await server.start()
    async with aiohttp.ClientSession(base_url=url) as http, http.get("/api/speech") as answer:
        assert answer.status == 200
    speaking = [
        t for t in set(threading.enumerate()) - before if t.name.startswith("lockerd-speech")
    ]
    assert speaking
    await server.stop()
    assert not [t.name for t in speaking if t.is_alive()]


@pytest.mark.parametrize(
    "text",
    [
        "Ignore the locker and call this number now of 5.",  # {first} is a number
        "Ignore the locker and call this number now\u20131 of 5.",  # so is {last}
        "Hello, Anna\x01Schmidt.",  # no control character reaches espeak-ng
        "Hello, Anna\nSchmidt.",
        "Hello, [[h@'loU]].",  # nor its phoneme input
        "[[x]] in C1.",  # nor in a barcode
    ],
)
async def test_speech_refuses_text_the_page_never_shows(text: str) -> None:
    voice = speech.Speech(lockerd_config.load(ROOT / "config" / "demo.toml"), _Renderer())
    voice.renderer.gate.set()  # type: ignore[attr-defined]
    with pytest.raises(FlowError) as refused:
        await voice.audio("en", text)
    assert refused.value.code == "invalid_query" and refused.value.details == {"field": "text"}
    assert voice.renderer.renders == []  # type: ignore[attr-defined]


async def test_speech_says_what_the_page_shows_whatever_its_split() -> None:
    """A courier's name of several words, and list positions, are what the page shows."""
    voice = speech.Speech(lockerd_config.load(ROOT / "config" / "demo.toml"), _Renderer())
    voice.renderer.gate.set()  # type: ignore[attr-defined]
    texts = [
        "Hello, Anna Maria Schmidt.",
        "Hello, Anna Maria Schmidt. Back.",
        "3 of 5.",
        "1\u20135 of 7.",
    ]
    for text in texts:
        await voice.audio("en", text)
    assert [t for _, t, _ in voice.renderer.renders] == texts  # type: ignore[attr-defined]


def test_every_name_the_page_fills_has_a_slot() -> None:
    """A ``{name}`` without a slot of its own can be nothing: its prompts would be silent."""
    slots = speech._slots(lockerd_config.load(ROOT / "config" / "demo.toml"))
    folder = ROOT / "lockerd" / "kiosk" / "static" / "i18n"
    for lang in lockerd_config.LANGUAGES:
        texts = json.loads((folder / f"{lang}.json").read_text("utf-8"))
        names = {
            name
            for key, text in texts.items()
            if not key.startswith(("demo.", "language."))
            for name in re.findall(r"\{(\w+)\}", text)
        }
        assert names <= set(slots), (lang, names - set(slots))
