// Accessibility switches on the home screen, as the European Accessibility Act asks of
// self-service terminals: high contrast, larger text, more time, spoken prompts. They
// last for one person's visit: its end (kiosk.js goHome) turns them off.
//
// Spoken prompts say what the screen shows and the choices it offers (the names of its
// buttons), each once, when it appears or changes: a screen newly shown is said whole;
// on the same screen only what is new (an instruction changed, a button offered, a
// toast). The browser's speechSynthesis speaks where it has a voice for the page's
// language; otherwise the daemon renders each part as a WAV (GET /api/speech/{lang},
// docs/kiosk-api.md) and an <audio> element plays them in turn. With neither, "Read
// aloud" is not offered.
import { language, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
export const settings = { contrast: false, large: false, time: false, speech: false };
// The page's languages the daemon has audio for.
let audioLanguages = [];
// What was said last: on which screen, and its parts.
let said = { screen: null, parts: [], toast: "" };
let looking = false;
const player = Object.assign(document.createElement("audio"), { id: "speech-audio" });
let queue = [];

function apply() {
  if (!settings.speech) {  // silence at once, and say the whole screen when switched on
    silence();
    said = { screen: null, parts: [], toast: "" };
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

// -- what is said ------------------------------------------------------------------

const visible = (el) => el.offsetParent !== null;
const sentence = (text) => (/[.!?…:]$/.test(text) ? text : `${text}.`);

// What `screen` says, in reading order: its title, hints, notes, instructions and
// alerts (home: its prompt), then the names of the buttons it offers (not a keypad's
// keys). Each part as a sentence.
function shownParts(screen) {
  const texts = screen.id === "screen-home" ? [t("home.prompt")] : [];
  const words = screen.id === "screen-home" ? ".hint" : "h1, .hint, .note, .instruction, .alarm";
  for (const el of screen.querySelectorAll(words)) {
    if (visible(el) || el.tagName === "H1") texts.push(el.textContent);
  }
  for (const button of screen.querySelectorAll("button")) {
    if (!visible(button) || button.closest(".pad")) continue;
    const label = button.getAttribute("aria-label");
    // A size's button: its name, then its dimensions, each a part.
    if (label) texts.push(label);
    else texts.push(...[...button.childNodes].map((node) => node.textContent));
  }
  return texts.map((text) => text.trim()).filter(Boolean).map(sentence);
}

// Say what changed since the last look (everything, `again`, or on a new screen); a
// toast over the screens once, when it appears.
function sayChanges(again = false) {
  const screen = document.querySelector("#kiosk .screen:not([hidden])");
  if (!settings.speech || !screen) return;
  const parts = shownParts(screen);
  const toast = $("toast").hidden ? "" : sentence($("toast").textContent.trim());
  const whole = again || screen !== said.screen;
  const fresh = whole ? parts : parts.filter((part) => !said.parts.includes(part));
  if (toast && (again || toast !== said.toast)) fresh.push(toast);
  said = { screen, parts, toast };
  if (fresh.length) say(fresh, whole);
}

// Look once the page has settled: a screen is drawn in several steps.
function changed() {
  if (!settings.speech || looking) return;
  looking = true;
  setTimeout(() => { looking = false; sayChanges(); }, 0);
}

// -- how it is said ----------------------------------------------------------------

function voice(lang) {
  const synth = window.speechSynthesis;
  if (!synth || typeof synth.getVoices !== "function") return null;
  return synth.getVoices().find((v) => v.lang.toLowerCase().split(/[-_]/)[0] === lang) || null;
}

// How the page's language can be spoken here: "voice", "audio", or "" (it cannot).
function way() {
  if (voice(language) && typeof SpeechSynthesisUtterance !== "undefined") return "voice";
  return audioLanguages.includes(language) ? "audio" : "";
}

function silence() {
  if (window.speechSynthesis) window.speechSynthesis.cancel();
  queue = [];
  player.pause();
  player.removeAttribute("src");
  player.load();  // and stop fetching it
}

// Say `parts` in the page's language: after what is being said, or instead of it (`now`).
function say(parts, now) {
  if (now) silence();
  const how = way();
  if (how === "voice") {
    const utterance = new SpeechSynthesisUtterance(parts.join(" "));
    utterance.lang = language;
    utterance.voice = voice(language);
    window.speechSynthesis.speak(utterance);
  } else if (how === "audio") {
    const idle = !queue.length && !player.getAttribute("src");
    queue.push(...parts.map((part) => `/api/speech/${language}?text=${encodeURIComponent(part)}`));
    if (idle) playNext();
  }
}

function playNext() {
  const next = queue.shift();
  if (!next) return player.removeAttribute("src");
  player.src = next;
  player.play().catch(() => {});  // interrupted (silence) or failed ("error": the next one)
}

// "Read aloud" only where it can be heard; in a language where it cannot, it is off.
function offer() {
  const button = $("access-speech");
  button.hidden = !way();
  if (button.hidden && settings.speech) {
    settings.speech = false;
    apply();
  }
}

async function audioFor() {
  try {
    const response = await fetch("/api/speech");
    return response.ok ? (await response.json()).languages : [];
  } catch (err) {
    return [];
  }
}

export async function startAccess() {
  for (const button of $("access").querySelectorAll("button")) {
    button.onclick = () => {
      settings[button.dataset.setting] = !settings[button.dataset.setting];
      apply();
      if (button.dataset.setting === "speech") sayChanges(true);
    };
  }
  player.hidden = true;
  player.addEventListener("ended", playNext);
  player.addEventListener("error", playNext);
  document.body.append(player);
  const watch = { subtree: true, childList: true, characterData: true, attributes: true };
  new MutationObserver(changed).observe($("kiosk"), { ...watch, attributeFilter: ["hidden"] });
  new MutationObserver(offer).observe(document.documentElement, { attributeFilter: ["lang"] });
  if (window.speechSynthesis && window.speechSynthesis.addEventListener) {
    window.speechSynthesis.addEventListener("voiceschanged", offer);
  }
  audioLanguages = await audioFor();
  offer();
  apply();
}
