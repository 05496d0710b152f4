"""Spoken prompts as audio files, for a kiosk whose browser has no voice.

Debian 12's Chromium offers no ``speechSynthesis`` voice (neither plain nor with
``--enable-speech-dispatcher`` without speech-dispatcher), so the page plays WAV files
instead: ``GET /api/speech/{lang}?text=`` renders ``text`` with
``kiosk.speech_renderer`` (espeak-ng) on demand and keeps it in a cache bounded in
bytes. Only a text the page itself can show is rendered: it must be made of the
page's own catalogue texts (``static/i18n/<lang>.json``, demo panel texts aside),
each ``{name}`` filled by what that name can be (a configured compartment or size,
a number, the support contact, a name or barcode without control characters or
espeak-ng's ``[[``/``]]``); any other text is ``400 invalid_query``. Renders
run one at a time in a worker thread of their own (``lockerd.worker``), never on
the event loop; a text asked for again while it renders waits for that render.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import struct
import subprocess
import time
from collections import OrderedDict
from importlib import resources

from aiohttp import web

from lockerd.config import LANGUAGES, Config
from lockerd.errors import BadRequest, FlowError
from lockerd.worker import Runner, Worker

log = logging.getLogger(__name__)

#: The longest text rendered (the longest the page shows is under 300 characters).
MAX_TEXT = 600
#: The cache of rendered WAVs holds at most this many bytes (a prompt is 30 to 300 KiB).
CACHE_BYTES = 16 * 2**20
#: At most this many texts wait for their render (the page asks for one at a time);
#: one more is refused ``429 too_fast``.
MAX_PENDING = 8
#: A render that takes longer than this has failed.
RENDER_TIMEOUT_S = 20.0

_NUMBER = r"\d{1,6}"
#: One character of a loose slot: no control character, no start of espeak-ng's
#: ``[[phonemes]]`` input.
_CHAR = r"(?:(?!\[\[|\]\])[^\x00-\x1f\x7f])"
_WORD = r"(?:(?!\[\[|\]\])[^\s\x00-\x1f\x7f])"
#: A ``{name}`` with no slot of its own can be nothing (every name the page fills has one).
_NOTHING = r"(?!)"
_NUMBERS = ("count", "attempts_left", "retry_after", "column", "row", "index", "total")
_POSITIONS = ("first", "last")  # list.one and list.range: "3 of 7", "1 to 5 of 7"
_DIMENSIONS = ("height", "width", "depth")


def _slots(config: Config) -> dict[str, str]:
    """What each ``{name}`` in a catalogue text may be filled with, as a regex."""
    ids = sorted(config.compartment_ids, key=len, reverse=True)
    one = f"(?:{'|'.join(map(re.escape, ids))})"
    return {
        "compartment": f"{one}(?:, {one}){{0,15}}",
        "size": f"(?:{'|'.join(map(re.escape, config.size_order))})",
        "support": re.escape(config.locker.support),
        "length": r"\d{1,2}(?:, \d{1,2}){0,5}(?: \w{1,8} \d{1,2})?",
        "time": r"[0-9:. \u202fAPMapm]{3,12}",
        "name": f"{_CHAR}{{1,80}}",
        "barcode": f"{_WORD}{{1,64}}",
        "reference": f"{_WORD}{{1,64}}",
    } | {name: _NUMBER for name in _NUMBERS + _POSITIONS + _DIMENSIONS}


class Catalogue:
    """The texts one language's page can show, as one pattern of one part."""

    def __init__(self, texts: dict[str, str], slots: dict[str, str]):
        parts = "|".join(
            self._pattern(text, slots)
            for key, text in sorted(texts.items())
            if text.strip() and not key.startswith(("demo.", "language."))
        )
        self.part = re.compile(f"(?:{parts})")

    @staticmethod
    def _pattern(text: str, slots: dict[str, str]) -> str:
        parts = re.split(r"\{(\w+)\}", text)
        literal = [re.escape(part) for part in parts[::2]]
        filled = [f"(?:{slots.get(name, _NOTHING)})" for name in parts[1::2]]
        body = "".join(p for pair in zip(literal, [*filled, ""], strict=True) for p in pair)
        return rf"{body}\.?"  # the page ends each part with a full stop

    def shows(self, text: str) -> bool:
        """Whether ``text`` is one or more of the texts, one space apart. Every split at
        a space is tried (a name may hold spaces), each start once: one regex over the
        whole text would backtrack through exponentially many splits."""
        ends = [i for i, char in enumerate(text) if char == " "] + [len(text)]
        reached, starts = {0}, [0]
        while starts:
            start = starts.pop()
            for end in ends:
                if end <= start or end + 1 in reached:
                    continue
                if self.part.fullmatch(text, start, end):
                    if end == len(text):
                        return True
                    reached.add(end + 1)
                    starts.append(end + 1)
        return False


def catalogues(config: Config) -> dict[str, Catalogue]:
    folder = resources.files("lockerd.kiosk").joinpath("static", "i18n")
    slots = _slots(config)
    return {
        lang: Catalogue(json.loads(folder.joinpath(f"{lang}.json").read_text("utf-8")), slots)
        for lang in LANGUAGES
    }


class Renderer:
    """espeak-ng as a program: blocking calls, for a worker thread."""

    def __init__(self, program: str):
        self.path = shutil.which(program) if program else None

    def has_voice(self, lang: str) -> bool:
        if self.path is None:
            return False
        try:
            listing = subprocess.run(
                [self.path, f"--voices={lang}"], capture_output=True, timeout=RENDER_TIMEOUT_S
            )
        except (OSError, subprocess.SubprocessError):
            log.exception("%s could not list its voices", self.path)
            return False
        return listing.returncode == 0 and len(listing.stdout.splitlines()) > 1

    def render(self, lang: str, text: str) -> bytes:
        """``text`` spoken in ``lang``, as a WAV (the text on stdin: never an option)."""
        assert self.path is not None
        done = subprocess.run(
            [self.path, "-v", lang, "--stdout"],
            input=text.encode(),
            capture_output=True,
            timeout=RENDER_TIMEOUT_S,
            check=True,
        )
        return complete_wav(done.stdout)


def complete_wav(data: bytes) -> bytes:
    """A WAV written to a pipe with its sizes filled in (espeak-ng cannot seek back to
    write them, and leaves 0x7fffffff there)."""
    at = data.find(b"data", 12)
    if data[:4] != b"RIFF" or at < 0:
        raise ValueError("the renderer wrote no WAV")
    head = data[:4] + struct.pack("<I", len(data) - 8) + data[8 : at + 4]
    return head + struct.pack("<I", len(data) - at - 8) + data[at + 8 :]


class Speech:
    """Spoken prompts for the page: which languages, and each text's audio, cached."""

    def __init__(self, config: Config, renderer: Renderer | None = None):
        self.renderer = renderer or Renderer(config.kiosk.speech_renderer)
        self.catalogues = catalogues(config)
        self._run: Runner = Worker("lockerd-speech")  # one render at a time, off the loop
        self._languages: asyncio.Future[list[str]] | None = None
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cached = 0  # bytes
        self._pending: dict[tuple[str, str], asyncio.Future[tuple[bytes, float]]] = {}

    def close(self) -> None:
        """Let a render under way finish, then stop the worker thread (blocking)."""
        self._run.shutdown()

    async def languages(self) -> list[str]:
        """The page's languages the renderer has a voice for (asked once)."""
        if self._languages is None:
            self._languages = asyncio.ensure_future(self._run(self._voices))
        return list(await asyncio.shield(self._languages))

    def _voices(self) -> list[str]:
        voices = [lang for lang in LANGUAGES if self.renderer.has_voice(lang)]
        if not voices:
            program = self.renderer.path or "no speech renderer"
            log.warning("spoken prompts have no audio: %s has no voice", program)
        return voices

    def check(self, lang: str, text: str | None) -> str:
        """``text`` if the page can show it in ``lang``, else a refusal naming why."""
        if lang not in self.catalogues:
            raise BadRequest(
                "invalid_query", f"lang must be one of {', '.join(LANGUAGES)}", field="lang"
            )
        if not text or len(text) > MAX_TEXT:
            raise BadRequest(
                "invalid_query", f"text must be 1 to {MAX_TEXT} characters", field="text"
            )
        if not self.catalogues[lang].shows(text):
            raise BadRequest(
                "invalid_query", f"text is not a text the kiosk shows in {lang}", field="text"
            )
        return text

    async def audio(self, lang: str, text: str) -> tuple[bytes, float]:
        """The WAV of ``text`` in ``lang`` and the seconds its render took (0: cached)."""
        key = (lang, self.check(lang, text))
        if lang not in await self.languages():
            raise BadRequest("invalid_query", f"no voice for {lang} here", field="lang")
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key], 0.0
        if key not in self._pending:
            if len(self._pending) >= MAX_PENDING:
                raise FlowError(
                    "too_fast", f"{MAX_PENDING} texts are being rendered", retry_after=1
                )
            self._pending[key] = asyncio.ensure_future(self._render(key))
        return await asyncio.shield(self._pending[key])

    async def _render(self, key: tuple[str, str]) -> tuple[bytes, float]:
        try:
            started = time.perf_counter()
            wav = await self._run(self.renderer.render, *key)
            took = time.perf_counter() - started
            log.debug("rendered %d bytes of speech in %.3f s", len(wav), took)
            self._keep(key, wav)
            return wav, took
        finally:
            del self._pending[key]

    def _keep(self, key: tuple[str, str], wav: bytes) -> None:
        self._cache[key] = wav
        self._cached += len(wav)
        while self._cached > CACHE_BYTES:
            self._cached -= len(self._cache.popitem(last=False)[1])


class SpeechRoutes:
    """``GET /api/speech`` (the languages with audio) and ``GET /api/speech/{lang}``."""

    def __init__(self, speech: Speech):
        self.speech = speech

    def add_to(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/speech", self.languages)
        r.add_get("/api/speech/{lang}", self.audio)

    async def languages(self, request: web.Request) -> web.Response:
        return web.json_response({"languages": await self.speech.languages()})

    async def audio(self, request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        wav, took = await self.speech.audio(lang, request.query.get("text", ""))
        timing = f"render;dur={took * 1000:.1f}"  # milliseconds; 0: from the cache
        headers = {"Cache-Control": "max-age=86400", "Server-Timing": timing}
        return web.Response(body=wav, content_type="audio/wav", headers=headers)
