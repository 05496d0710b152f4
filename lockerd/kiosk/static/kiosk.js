// The touchscreen kiosk: residents collect, couriers drop off and collect, all by touch or scan.
// Every flow lives in lockerd; this page shows it and follows it on the event stream.
import { language, languageNames, setLanguage, t } from "./i18n.js";
import { makePad } from "./pad.js";
import { startDemo } from "./demo.js";
import { drawMap, remember, toShow } from "./views.js";
import { MORE_TIME, anyAccess, prompt, resetAccess, settings, speak, startAccess } from "./access.js";
import {
  betweenDoors, collectedText, offerReopen, pickupDoor, pickupError, pickupNotOpen, reopen,
} from "./pickup.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["opening", "open"];
const state = {
  status: null, screen: "home", rerender: null, flow: null, token: null, courier: null,
  lowReach: false, delivered: [], collectable: [], note: null, message: null,
  lastTouch: Date.now(), lastSeq: 0, demo: null,
};

export async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw { code: "offline", message: String(err) };
  }
  let data;
  try {
    data = await response.json();
  } catch (err) {  // not JSON: a proxy or a plain-text HTTP error, nothing the page can fix
    throw { code: "internal_error", message: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw data.error;
  return data;
}

// -- screens ------------------------------------------------------------------

function show(name, render = null) {
  const changed = state.screen !== name;
  state.screen = name;
  state.rerender = render;
  if (render) render();
  for (const screen of document.querySelectorAll(".screen")) {
    screen.hidden = screen.id !== `screen-${name}`;
  }
  // A new screen starts at its top, whatever was scrolled (the demo panel beside it).
  if (changed) window.scrollTo(0, 0);
  speak(prompt($(`screen-${name}`)));
}

function showMessage(title, text, params, then) {
  state.message = { title, text, params, then };
  $("message-reopen").hidden = true;
  show("message", () => {
    $("message-title").textContent = t(title, params);
    const support = params && params.support;
    $("message-text").textContent =
      t(text, params) + (support ? ` ${t("error.support", { support })}` : "");
  });
}

// Errors after which a person may need to call someone: the configured contact is added.
const FOR_SUPPORT = [
  "compartment_unreachable",
  "compartment_out_of_order",
  "pickup_stuck",
  "parcel_not_seen",
  "parcel_still_inside",
  "locked_out",
  "courier_locked_out",
  "too_fast",
  "parcel_expired",
  "locker_full",
  "no_larger_size",
  "not_allowed",
  "not_collectable",
  "token_used",
  "token_expired",
  "token_wrong_locker",
  "parcel_not_here",
  "internal_error",
  "offline",
  "reopen_expired",
  "reopen_used",
  "compartment_taken",
];

function showError(err, then) {
  const params = {
    ...err,
    time: clockTime(err.retry_after || 0),
    count: "attempts_left" in err ? err.attempts_left : err.retry_after,
    support: FOR_SUPPORT.includes(err.code) ? state.status.locker.support : "",
    length: codeLengths(),
  };
  showMessage("error.title", `error.${err.code}`, params, then);
}

// "9", "8 or 9": every length a pickup code may have. A code issued before the
// length changed keeps its own while its parcel is stored (/api/status code_lengths);
// the keypad takes up to 12 digits and sends what was typed when "Open" is pressed.
function codeLengths() {
  const lengths = state.status.code_lengths || [state.status.code_length];
  if (lengths.length === 1) return String(lengths[0]);
  return `${lengths.slice(0, -1).join(", ")} ${t("pin.or")} ${lengths[lengths.length - 1]}`;
}

// The clock time `seconds` from now, rounded up to the minute so that coming back
// at the time shown never finds the keypad still locked.
function clockTime(seconds) {
  const at = new Date(Math.ceil((Date.now() + seconds * 1000) / 60000) * 60000);
  return at.toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
}

$("message-ok").onclick = () => state.message.then();
$("message-reopen").onclick = () => reopen(api).then(track, (err) => showError(err, goHome));

// Home, the visit over: logged out, the default language, the accessibility switches off.
// "Back" from the first step keeps the person's language and switches (`keep`).
function goHome(keep = false) {
  if (state.token) api("POST", "/api/courier/logout").catch(() => {});
  Object.assign(state, { token: null, courier: null, flow: null, delivered: [], lowReach: false });
  pin.set("");
  login.set("");
  barcode.set("");
  if (keep !== true) {
    resetAccess();
    if (language !== state.status.kiosk.language) switchLanguage(state.status.kiosk.language);
  }
  show("home");
}

// -- resident pickup ------------------------------------------------------------

const pin = makePad($("pin-pad"), $("pin-display"), "digits", 12);
$("go-collect").onclick = () => {
  pin.set("");
  const hint = () => { $("pin-hint").textContent = t("pin.hint", { length: codeLengths() }); };
  show("pin", hint);
  // The lengths change as parcels with older codes leave: ask again, quietly.
  api("GET", "/api/status").then((status) => {
    state.status.code_lengths = status.code_lengths;
    if (state.screen === "pin") hint();
  }).catch(() => {});
};
$("pin-back").onclick = () => goHome(true);
$("pin-ok").onclick = () => pickup({ code: pin.value });

async function pickup(body) {
  try {
    track(await api("POST", "/api/pickups", body));
  } catch (err) {
    pin.set("");
    showError(err, () => $("go-collect").onclick());
  }
}

// -- courier --------------------------------------------------------------------

const login = makePad($("login-pad"), $("login-display"), "keys", 64, true);
const barcode = makePad($("barcode-pad"), $("barcode-display"), "keys", 64);
$("go-courier").onclick = () => { login.set(""); show("login"); };
$("login-back").onclick = () => goHome(true);
$("login-ok").onclick = () => courierLogin({ code: login.value });
$("courier-finish").onclick = () => goHome();

async function courierLogin(body) {
  try {
    const answer = await api("POST", "/api/courier/login", body);
    Object.assign(state, { token: answer.token, courier: answer.courier, delivered: [] });
    openCourier(null);
  } catch (err) {
    login.set("");
    // A courier's lock-out is its own: no word of the residents' QR codes.
    const courierErr = err.code === "locked_out" ? { ...err, code: "courier_locked_out" } : err;
    showError(courierErr, () => show("login"));
  }
}

function openCourier(note) {
  state.note = note;
  barcode.set("");
  $("go-collections").hidden = !state.courier.rights.includes("collect");
  show("courier", () => {
    $("courier-title").textContent = t("courier.hello", { name: state.courier.name || state.courier.id });
    $("courier-note").textContent = note ? t(note.key, note.params) : "";
    $("delivered").replaceChildren(...state.delivered.map((flow) => {
      const item = document.createElement("li");
      item.textContent = t("courier.delivered_item", flow);
      return item;
    }));
  });
}

function courierError(err, back = () => openCourier(null)) {
  if (err.code === "session_expired") showError(err, goHome);
  else showError(err, back);
}

$("low").onclick = () => {
  state.lowReach = !state.lowReach;
  $("low").setAttribute("aria-pressed", String(state.lowReach));
};
$("barcode-ok").onclick = () => dropoff({ barcode: barcode.value });

async function dropoff(body) {
  try {
    track(await api("POST", "/api/dropoffs", { ...body, prefer_low: state.lowReach }));
  } catch (err) {
    courierError(err);
  }
}

async function dropoffAction(path, body) {
  try {
    track(await api("POST", `/api/dropoffs/${state.flow.id}/${path}`, body));
  } catch (err) {
    courierError(err, () => render(state.flow));
  }
}

$("door-not-open").onclick = () => {
  if (state.flow.kind !== "pickup") return dropoffAction("door-did-not-open");
  pickupNotOpen(api, state.flow).then(track, (err) => showError(err, goHome));
};
$("door-doesnt-fit").onclick = () => dropoffAction("doesnt-fit");
$("door-cancel").onclick = () => dropoffAction("cancel");
$("size-cancel").onclick = () => dropoffAction("cancel");

$("go-collections").onclick = () => openCollections(null);
$("collections-back").onclick = () => openCourier(null);

async function openCollections(note) {
  try {
    state.collectable = (await api("GET", "/api/collections")).parcels;
  } catch (err) {
    return courierError(err);
  }
  show("collections", () => {
    $("collections-note").textContent = note ? t(note.key, note.params) : "";
    const items = state.collectable.map((parcel) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.textContent = t("collect.item", { compartment: parcel.compartment_id, barcode: parcel.barcode });
      button.onclick = () => collect(parcel.id);
      item.appendChild(button);
      return item;
    });
    if (!items.length) items.push(Object.assign(document.createElement("li"), { textContent: t("collect.empty") }));
    $("collections").replaceChildren(...items);
  });
}

async function collect(parcelId) {
  try {
    track(await api("POST", "/api/collections", { parcel: parcelId }));
  } catch (err) {
    courierError(err, () => openCollections(null));
  }
}

// -- following a flow ------------------------------------------------------------

function track(flow) {
  const view = toShow(flow);
  if (!view) return;
  state.flow = view;
  render(view);
}

function render(flow) {
  if (betweenDoors(flow)) return;
  const view = { barcode: flow.barcode, compartment: flow.compartment };
  if (ACTIVE.includes(flow.state)) {
    const instruction = { dropoff: "door.put_in", pickup: "door.take_out", collect: "door.take_back" };
    return showDoor(flow, instruction[flow.kind]);
  }
  if (["need_size", "offer_size", "did_not_open"].includes(flow.state)) return showSizes(flow);
  state.flow = null;
  if (flow.kind === "dropoff") {
    if (flow.state === "stored") {
      state.delivered.push(view);
      return openCourier({ key: "courier.stored", params: view });
    }
    if (flow.state === "no_larger_size") {
      const support = state.status.locker.support;
      return showMessage("done.no_larger_title", "done.no_larger", { support }, () => openCourier(null));
    }
    if (flow.state === "failed") return courierError(flow.error);
    return openCourier(null);
  }
  if (flow.kind === "collect") {
    if (flow.state === "failed") return courierError(flow.error, () => openCollections(null));
    return openCollections({ key: "collect.done", params: view });
  }
  if (flow.state === "failed" || flow.stuck.length) return showError(pickupError(flow), goHome);
  showMessage("done.collected_title", ...collectedText(flow), goHome);
  const shown = state.message;
  const grace = offerReopen(flow, state.status.reopen_grace_s, () => state.message === shown);
  setTimeout(() => { if (state.screen === "message" && state.message === shown) goHome(); }, Math.max(8000, grace));
}

function showDoor(flow, instruction) {
  const place = state.status.compartments.find((c) => c.id === flow.compartment) || {};
  const dropoff = flow.kind === "dropoff";
  $("door-not-open").hidden = !dropoff || flow.state !== "opening";
  $("door-doesnt-fit").hidden = !dropoff || flow.state !== "open";
  $("door-cancel").hidden = !dropoff;
  $("door-alarm").hidden = flow.alarm !== "left_open";
  pickupDoor(flow);
  show("door", () => {
    const params = { compartment: flow.compartment, column: place.column, row: place.row };
    $("door-title").textContent = t(flow.state === "open" ? "door.open" : "door.opening", params);
    $("door-where").textContent = t("door.where", params);
    const retrying = flow.state === "opening" && flow.attempt > 1;
    $("door-text").textContent = t(retrying ? "door.retry" : instruction);
    drawMap($("door-map"), state.status.compartments, flow.compartment);
  });
}

function showSizes(flow) {
  const sizes = state.status.sizes;
  const from = flow.offered_size ? sizes.indexOf(flow.offered_size) : 0;
  show("size", () => {
    const title = flow.state === "did_not_open" ? "size.did_not_open" : flow.offered_size ? "size.larger" : "size.title";
    $("size-title").textContent = t(title, { compartment: flow.error && flow.error.compartment });
    $("size-for").textContent = t("size.for", { barcode: flow.barcode });
    $("sizes").replaceChildren(...sizes.slice(from).map((size) => {
      const button = document.createElement("button");
      const dims = state.status.size_dimensions[size];
      button.textContent = t("size.option", { size });
      button.dataset.size = size;
      if (dims && dims.height_mm) {
        const small = document.createElement("small");
        small.textContent = t("size.dims", { height: dims.height_mm, width: dims.width_mm, depth: dims.depth_mm });
        button.appendChild(small);
      }
      button.onclick = () => dropoffAction("size", { size });
      return button;
    }));
  });
}

// -- scans and the event stream ----------------------------------------------------

function onScan(scan) {
  state.lastTouch = Date.now();
  const body = { scan: scan.id };
  if (state.screen === "home") return scan.kind === "pickup_token" ? pickup(body) : courierLogin(body);
  if (state.screen === "pin") return pickup(body);
  if (state.screen === "login") return courierLogin(body);
  if (state.screen === "courier") return dropoff(body);
}

let toastTimer = null;
function toast(key) {
  $("toast").textContent = t(key);
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 4000);
}

async function resync() {
  const flow = state.flow;
  if (!flow) return;
  const path = { dropoff: "dropoffs", pickup: "pickups", collect: "collections" }[flow.kind];
  try {
    const now = await api("GET", `/api/${path}/${flow.id}`);
    if (state.flow && state.flow.id === now.id) track(now);
  } catch (err) { /* the flow is gone: the idle timeout returns home */ }
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/api/events?after=${state.lastSeq}`);
  ws.onopen = () => { $("conn").hidden = true; resync(); };
  ws.onclose = () => { $("conn").hidden = false; setTimeout(connect, 2000); };
  ws.onmessage = (message) => {
    const msg = JSON.parse(message.data);
    if (msg.type === "flow.updated") {
      remember(msg.flow);
      if (state.flow && state.flow.id === msg.flow.id) track(msg.flow);
    } else if (msg.type === "scan") {
      onScan(msg.scan);
    } else if (msg.type === "scan.rejected") {
      toast("scan.unreadable");
    } else if (msg.seq !== undefined) {
      state.lastSeq = Math.max(state.lastSeq, msg.seq);
      if (state.demo) state.demo.changed();
    }
  };
}

// -- language, idle timeout, start ------------------------------------------------------

async function switchLanguage(lang) {
  await setLanguage(lang);
  login.layout(lang);
  barcode.layout(lang);
  for (const button of $("languages").children) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  if (state.rerender) state.rerender();
  if (state.demo) state.demo.changed();
}

async function buildLanguages(langs) {
  const names = await languageNames(langs);
  $("languages").replaceChildren(...langs.map((lang) => {
    const button = document.createElement("button");
    button.textContent = names[lang];
    button.lang = lang;
    button.dataset.lang = lang;
    button.onclick = () => switchLanguage(lang);
    return button;
  }));
}

function idleCheck() {
  const idleS = state.status.kiosk.idle_s * (settings.time ? MORE_TIME : 1);
  const idle = Date.now() - state.lastTouch > idleS * 1000;
  const busy = state.flow && ACTIVE.includes(state.flow.state);
  const away = state.screen !== "home" || state.token || language !== state.status.kiosk.language
    || anyAccess();
  if (idle && !busy && away) goHome();
  setTimeout(idleCheck, 1000);
}

for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => { state.lastTouch = Date.now(); }, true);
}

async function start() {
  try {
    state.status = await api("GET", "/api/status");
  } catch (err) {
    $("conn").hidden = false;
    return setTimeout(start, 2000);
  }
  const status = state.status;
  state.lastSeq = status.last_seq;
  $("locker-name").textContent = status.locker.name || status.locker.id;
  const camera = status.scanners.some((s) => s.type === "camera");
  for (const hint of document.querySelectorAll(".qr-hint")) hint.hidden = !camera;
  await buildLanguages(status.kiosk.languages);
  await switchLanguage(status.kiosk.language);
  startAccess((setting) => { if (setting === "speech") speak(prompt($(`screen-${state.screen}`)), true); });
  if (status.demo) state.demo = startDemo(api, status);
  connect();
  idleCheck();
  document.body.dataset.ready = "true";
}

start();
