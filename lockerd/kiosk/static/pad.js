// On-screen keypads: digits for pickup codes; digits and letters for courier codes and
// labels, laid out as the keyboard of the language shown (QWERTY, QWERTZ).
import { t } from "./i18n.js";

const LETTERS = {
  en: "1234567890QWERTYUIOPASDFGHJKL-ZXCVBNM",
  de: "1234567890QWERTZUIOPASDFGHJKL-YXCVBNM",
};

function keysOf(layout, language) {
  if (layout === "digits") return [..."123456789", "clear", "0", "delete"];
  return [...(LETTERS[language] || LETTERS.en), "delete", "clear"];
}

// A keypad in `container` typing into `display`; `masked` shows a dot for each character
// (a courier code on a public screen).
export function makePad(container, display, layout, maxLength, masked = false) {
  const pad = { value: "" };
  const render = () => {
    display.textContent = masked ? "\u2022".repeat(pad.value.length) : pad.value;
  };
  const press = (key) => {
    if (key === "clear") pad.value = "";
    else if (key === "delete") pad.value = pad.value.slice(0, -1);
    else if (pad.value.length < maxLength) pad.value += key;
    render();
  };
  const button = (key) => {
    const b = document.createElement("button");
    b.type = "button";
    b.onclick = () => press(key);
    if (key !== "clear" && key !== "delete") return Object.assign(b, { textContent: key });
    Object.assign(b.dataset, { i18n: `pad.${key}`, i18nLabel: `pad.${key}_label` });
    b.textContent = t(`pad.${key}`);
    b.setAttribute("aria-label", t(`pad.${key}_label`));
    b.className = layout === "keys" ? "wide" : "word";
    return b;
  };
  // Lay the keys out for `language` (its letter order); what is typed stays.
  pad.layout = (language) => {
    container.replaceChildren(...keysOf(layout, language).map(button));
  };
  pad.set = (value) => { pad.value = value; render(); };
  pad.layout("en");
  return pad;
}
