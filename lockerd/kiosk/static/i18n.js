// The string catalogues: every word the kiosk shows comes from /static/i18n/<language>.json.
const catalogues = {};
let strings = {};
export let language = "";

async function catalogue(lang) {
  if (!catalogues[lang]) {
    const response = await fetch(`/static/i18n/${lang}.json`);
    catalogues[lang] = await response.json();
  }
  return catalogues[lang];
}

// The name of each language, in that language, for the switch.
export async function languageNames(langs) {
  const names = {};
  for (const lang of langs) names[lang] = (await catalogue(lang))["language.name"] || lang;
  return names;
}

export async function setLanguage(lang) {
  strings = await catalogue(lang);
  language = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

// The text of `key` with each {name} replaced by params[name]. With a number in
// params.count, the language's plural form `key.one` is taken where it has one
// ("1 attempt left", "1 Sekunde").
export function t(key, params = {}) {
  const counted = typeof params.count === "number";
  const form = counted ? new Intl.PluralRules(language || "en").select(params.count) : "";
  const text = strings[`${key}.${form}`] ?? strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => String(params[name] ?? whole));
}
