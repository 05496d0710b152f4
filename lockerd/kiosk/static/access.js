// Accessibility switches on the home screen, as the European Accessibility Act asks of
// self-service terminals: high contrast, larger text, more time, spoken prompts. They
// last for one person's visit: its end (kiosk.js goHome) turns them off.
import { language, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
// How much longer the idle timeout is with "more time".
export const MORE_TIME = 3;
export const settings = { contrast: false, large: false, time: false, speech: false };
let lastSpoken = "";

function apply() {
  if (!settings.speech) {  // silence at once, and say the next screen when switched on
    lastSpoken = "";
    if (window.speechSynthesis) window.speechSynthesis.cancel();
  }
  document.documentElement.classList.toggle("contrast", settings.contrast);
  document.documentElement.classList.toggle("large", settings.large);
  for (const button of $("access").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(settings[button.dataset.setting]));
  }
}

export function resetAccess() {
  for (const key of Object.keys(settings)) settings[key] = false;
  apply();
}

export function anyAccess() {
  return Object.values(settings).some(Boolean);
}

// Speak `text` in the page's language, if spoken prompts are on and it is new.
export function speak(text, again = false) {
  if (!settings.speech || !text || (text === lastSpoken && !again)) return;
  lastSpoken = text;
  const synth = window.speechSynthesis;
  if (!synth || typeof SpeechSynthesisUtterance === "undefined") return;
  synth.cancel();
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = language;
  synth.speak(utterance);
}

// What the screen shown says: its title, hints, instructions and alerts.
export function prompt(screen) {
  if (screen.id === "screen-home") return t("home.prompt");
  const parts = screen.querySelectorAll("h1, .hint, .note, .instruction, .alarm");
  return [...parts].filter((el) => el.offsetParent !== null || el.tagName === "H1")
    .map((el) => el.textContent.trim()).filter(Boolean)
    .map((text) => (/[.!?…:]$/.test(text) ? text : `${text}.`)).join(" ");
}

export function startAccess(onChange) {
  for (const button of $("access").querySelectorAll("button")) {
    button.onclick = () => {
      settings[button.dataset.setting] = !settings[button.dataset.setting];
      apply();
      onChange(button.dataset.setting);
    };
  }
  apply();
}
