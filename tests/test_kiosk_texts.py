"""The kiosk's words: German throughout, a keyboard per language, plurals per language,
the courier code masked, the size chooser labelled, the active language marked."""

from __future__ import annotations

import json
import re

from tests.browser import demo_kiosk
from tests.daemon import ROOT

CATALOGUES = ROOT / "lockerd" / "kiosk" / "static" / "i18n"
KEYS = "() => [...document.querySelectorAll('#login-pad button')].map((b) => b.textContent)"


def _english_only() -> list[str]:
    """Each piece of English text (between placeholders) of a string German words otherwise."""
    en = json.loads((CATALOGUES / "en.json").read_text())
    de = json.loads((CATALOGUES / "de.json").read_text())
    pieces = (
        re.split(r"\{\w+\}", text)
        for key, text in en.items()
        if de[key] != text and key != "language.name"  # each name is shown in the switch
    )
    return sorted({p.strip() for split in pieces for p in split if len(p.strip()) >= 4})


async def test_german_throughout_with_its_own_keyboard(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        await kiosk.daemon.drop_off("JJD0001")  # a recipient message in the demo panel
        page = kiosk.page
        assert "".join(await page.evaluate(KEYS)).startswith("1234567890QWERTYUIOPASDFGHJKL-ZXCV")
        await kiosk.tap("Deutsch")
        await kiosk.shows("#grid .cell >> nth=0", re.compile("frei"))
        await kiosk.shows("#messages li >> nth=0", re.compile("Abholcode"))
        shown = await page.locator("#app").inner_text()
        assert [piece for piece in _english_only() if piece in shown] == []
        await kiosk.tap("Zusteller")
        await kiosk.screen("login")
        assert await page.evaluate(KEYS) == [
            *"1234567890QWERTZUIOPASDFGHJKL-YXCVBNM", "Zeichen löschen", "Alles löschen",
        ]  # fmt: skip
        shown = await page.locator("#app").inner_text()
        assert [piece for piece in _english_only() if piece in shown] == []
        await kiosk.snap("login-de")


async def test_the_courier_code_is_masked_as_it_is_typed(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        await kiosk.tap("Courier")
        await kiosk.type_on("login-pad", "1234")
        assert await kiosk.text("#login-display") == "\u2022" * 4
        assert "1234" not in await kiosk.page.locator("#app").inner_text()
        await kiosk.tap("Delete the last character", "#login-pad")
        assert await kiosk.text("#login-display") == "\u2022" * 3
        await kiosk.type_on("login-pad", "4")
        await kiosk.tap("Log in")  # what was typed, not the dots, is sent
        await kiosk.screen("courier")


async def test_the_size_chooser_names_the_parcel_and_labels_the_dimensions(
    tmp_path, browser
) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        await kiosk.log_in()
        await kiosk.type_on("barcode-pad", "PKG00002")
        await kiosk.tap("Drop off")
        await kiosk.screen("size")
        assert await kiosk.text("#size-for") == "For parcel PKG00002"
        labels = await kiosk.page.locator("#sizes small").all_inner_texts()
        assert labels == [
            "height 90 · width 400 · depth 600 mm",
            "height 190 · width 400 · depth 600 mm",
            "height 390 · width 400 · depth 600 mm",
        ]
        await kiosk.tap("Deutsch")
        await kiosk.shows("#size-for", "Für Paket PKG00002")
        await kiosk.shows("#sizes small >> nth=0", "Höhe 90 · Breite 400 · Tiefe 600 mm")
        await kiosk.snap("size-de")


async def test_the_active_language_is_pressed_and_looks_it(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        looks = """(button) => {
            const style = getComputedStyle(button);
            return [button.getAttribute("aria-pressed"), style.backgroundColor, style.fontWeight,
                    getComputedStyle(button, "::before").content];
        }"""
        english, deutsch = kiosk.button("English"), kiosk.button("Deutsch")
        pressed, plain = await english.evaluate(looks), await deutsch.evaluate(looks)
        assert (pressed[0], plain[0]) == ("true", "false")
        assert pressed[1] != plain[1] and pressed[2] != plain[2]
        assert '"✓ "' in pressed[3] and plain[3] == "none"
        await kiosk.tap("Deutsch")
        assert await deutsch.evaluate(looks) == pressed
        assert await english.evaluate(looks) == plain


async def test_counts_take_each_language_s_plural(tmp_path, browser) -> None:
    async with demo_kiosk(tmp_path, browser) as kiosk:
        texts = await kiosk.page.evaluate(
            """async () => {
                const i18n = await import("/static/i18n.js");
                const said = {};
                for (const lang of ["en", "de"]) {
                    await i18n.setLanguage(lang);
                    said[lang] = [1, 2].flatMap((n) => [
                        i18n.t("error.too_fast", { retry_after: n, count: n }),
                        i18n.t("error.token_invalid", { attempts_left: n, count: n }),
                    ]);
                }
                await i18n.setLanguage("en");
                return said;
            }"""
        )
        assert texts == {
            "en": [
                "Please wait 1 second before trying again.",
                "This QR code is not valid here. 1 attempt left.",
                "Please wait 2 seconds before trying again.",
                "This QR code is not valid here. 2 attempts left.",
            ],
            "de": [
                "Bitte warten Sie 1 Sekunde bis zum nächsten Versuch.",
                "Dieser QR-Code gilt hier nicht. Noch 1 Versuch.",
                "Bitte warten Sie 2 Sekunden bis zum nächsten Versuch.",
                "Dieser QR-Code gilt hier nicht. Noch 2 Versuche.",
            ],
        }
