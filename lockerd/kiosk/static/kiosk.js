// The touchscreen kiosk: residents collect, couriers drop off and collect, all by touch or scan.
// Every flow lives in lockerd; this page shows it and follows it on the event stream.
import { language, languageNames, setLanguage, t } from "./i18n.js";
import { makePad } from "./pad.js";
import { startDemo } from "./demo.js";
import { startCourier } from "./courier.js";
import { startSend } from "./send.js";
import { drawMap, remember, toShow } from "./views.js";
import { anyAccess, resetAccess, settings, startAccess } from "./access.js";
import {
  betweenDoors, collectedText, offerNext, offerReopen, openNext, pickupDoor, pickupError,
  pickupNotOpen, reopen,
} from "./pickup.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = ["opening", "open"];
// At a door: opening or open, or a cancelled drop-off's door the courier must shut.
const AT_DOOR = [...ACTIVE, "closing"];
const DOOR_TITLE = { opening: "door.opening", open: "door.open", closing: "door.close" };
const state = {
  status: null, screen: "home", rerender: null, flow: null, token: null, message: null,
  lastTouch: Date.now(), lastSeq: 0, demo: null,
};

// The requests that begin a visit's flow or courier session: they carry the visit's
// "more time", and the server gives that person longer for every door (docs/kiosk-api.md).
const BEGINS_VISIT = ["/api/pickups", "/api/sends", "/api/courier/login"];

export async function api(method, path, body) {
  if (method === "POST" && BEGINS_VISIT.includes(path)) body = { ...body, more_time: settings.time };
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
}

function showMessage(title, text, params, then) {
  state.message = { title, text, params, then };
  $("message-reopen").hidden = true;
  $("message-next").hidden = true;
  show("message", () => {
    $("message-title").textContent = t(title, params);
    const support = params && params.support;
    const also = params && params.also ? ` ${t(params.also, params)}` : "";
    $("message-text").textContent =
      t(text, params) + also + (support ? ` ${t("error.support", { support })}` : "");
  });
}

// How many times longer this visit's person has for everything ("More time" on the
// home screen; the server's factor, /api/status kiosk.more_time).
function timeFactor() {
  return settings.time ? state.status.kiosk.more_time : 1;
}

// How long the message shown stays before the page goes home by itself: long enough
// to read it (a tenth of a second a character, at least 8 s), times the visit's factor.
function readingMs() {
  const text = `${$("message-title").textContent} ${$("message-text").textContent}`;
  return Math.max(8000, 100 * text.length) * timeFactor();
}

// Errors after which a person may need to call someone (dead ends): the configured
// contact is added. Every error the page can show is here or in TRY_AGAIN
// (tests/test_kiosk_dead_ends.py derives the list from the code); one in neither is
// taken for a dead end.
const FOR_SUPPORT = [
  "compartment_unreachable",
  "compartment_out_of_order",
  "pickup_stuck",
  "pickup_stuck_report",
  "disputed_pickup",
  "parcel_not_seen",
  "item_left_inside",
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
  "door_not_shut",
  "send_code_used",
  "send_code_expired",
  "send_code_wrong_locker",
  "send_code_in_check",
  "send_not_enabled",
  "not_collected",
  "other_carrier",
  "already_stored",
  "wrong_state",
  "in_service",
  "unknown_compartment",
  "unknown_scanner",
  "invalid_text",
  "invalid_format",
  // The page sent what the server refuses: nothing the person can change.
  "invalid_json",
  "unknown_field",
  "invalid_field",
  "invalid_query",
  "wrong_host",
  "foreign_origin",
  "unsupported_media_type",
  "body_too_large",
  "not_found",
  "method_not_allowed",
  "bad_request",
  "http_error",
  "unknown_action",
];

// Errors a person gets past on their own, as the text says: type or scan again, choose
// another size, finish with the open door, log in again. No contact.
const TRY_AGAIN = [
  "missing_field",
  "invalid_barcode",
  "invalid_size",
  "size_too_small",
  "invalid_code",
  "session_expired",
  "wrong_code",
  "unknown_flow",
  "already_in_progress",
  "door_in_progress",
  "door_not_open",
  "pickup_in_progress",
  "invalid_token",
  "token_invalid",
  "invalid_send_code",
  "send_code_invalid",
  "not_depositing",
  "qr_not_enabled",
  "unknown_scan",
  "door_not_closed",
  "lock_not_latched",
  "no_low_compartment",
  "not_opened_in_time",
  "no_next_door",
  "door_did_not_open",
];

// `pickup`: refused at the resident's keypad (a lock-out there names the QR code, where a
// camera takes one).
function showError(err, then, pickup = false) {
  // A stuck parcel: the back office is told (parcel.stuck) only where one is configured.
  const code = err.code === "pickup_stuck" && !state.status.back_office ? "pickup_stuck_report" : err.code;
  const qr = pickup && code === "locked_out" && hasCamera();
  const params = {
    ...err,
    time: clockTime(err.retry_after || 0),
    count: "attempts_left" in err ? err.attempts_left : err.retry_after,
    support: TRY_AGAIN.includes(code) ? "" : state.status.locker.support,
    length: codeLengths(),
    also: qr ? "pin.qr_still_works" : "",
  };
  showMessage("error.title", `error.${code}`, params, then);
}

function hasCamera() {
  return state.status.scanners.some((s) => s.type === "camera");
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
$("message-next").onclick = () => openNext(api).then(track, (err) => showError(err, goHome));

// Home, the visit over: logged out, the default language, the accessibility switches off.
// "Back" from the first step keeps the person's language and switches (`keep`).
function goHome(keep = false) {
  if (state.token) api("POST", "/api/courier/logout").catch(() => {});
  Object.assign(state, { token: null, flow: null });
  pin.set("");
  courier.reset();
  if (keep !== true) {
    sends.reset();
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
    showError(err, () => $("go-collect").onclick(), true);
  }
}

// -- courier: courier.js ---------------------------------------------------------

const courier = startCourier({
  state, api, show, showMessage, showError, goHome, track, render,
  outbound: (failed) => sends.outbound(failed),
});

// -- sending and returning (send.js) ---------------------------------------------------

const support = () => state.status.locker.support;
const sends = startSend({ api, show, track, showError, showMessage, goHome, support });

// "The door did not open": a courier's drop-off or send (courier.js), or a resident's pickup.
$("door-not-open").onclick = () => {
  if (state.flow.kind !== "pickup") return courier.dropoffAction("door-did-not-open");
  pickupNotOpen(api, state.flow).then(track, (err) => showError(err, goHome));
};

// -- following a flow ------------------------------------------------------------

function track(flow) {
  const view = toShow(flow);
  if (!view) return;
  state.flow = view;
  render(view);
}

function render(flow) {
  if (betweenDoors(flow)) return;
  if (AT_DOOR.includes(flow.state)) {
    const instruction = flow.state === "closing" ? "door.cancelled" : {
      dropoff: "door.put_in", send: "door.put_in", pickup: "door.take_out", collect: "door.take_back",
    }[flow.kind];
    return showDoor(flow, instruction);
  }
  // A send asks what a drop-off asks (courier.js's screens), and ends on its own.
  const asking = ["need_size", "offer_size", "did_not_open", "no_low"].includes(flow.state);
  if (flow.kind === "send" && !asking) {
    state.flow = null;
    return sends.finish(flow);
  }
  if (flow.kind !== "pickup") return courier.render(flow);
  state.flow = null;
  const failed = flow.state === "failed" || flow.stuck.length;
  if (failed) showError(pickupError(flow), goHome);
  else showMessage("done.collected_title", ...collectedText(flow), goHome);
  const shown = state.message;
  const stillShown = () => state.message === shown;
  // The server's offers last as long for this person as it gives them (flow.more_time).
  const factor = flow.more_time ? state.status.kiosk.more_time : 1;
  const grace = failed ? 0 : offerReopen(flow, state.status.reopen_grace_s * factor, stillShown);
  const next = offerNext(flow, state.status.next_door_s * factor, stillShown);
  // Home once read, the visit's switches and language kept: the person may still be
  // here; the idle timeout ends the visit.
  const home = () => { if (state.screen === "message" && stillShown()) goHome(true); };
  setTimeout(home, Math.max(readingMs(), grace, next));
}

function showDoor(flow, instruction) {
  const place = state.status.compartments.find((c) => c.id === flow.compartment) || {};
  const dropoff = ["dropoff", "send"].includes(flow.kind);
  $("door-not-open").hidden = !dropoff || flow.state !== "opening";
  $("door-doesnt-fit").hidden = !dropoff || flow.state !== "open";
  $("door-cancel").hidden = !dropoff || flow.state === "closing";
  $("door-leave").hidden = flow.state !== "closing";
  $("door-alarm").hidden = flow.alarm !== "left_open";
  pickupDoor(flow);
  show("door", () => {
    const params = { compartment: flow.compartment, column: place.column, row: place.row };
    $("door-title").textContent = t(DOOR_TITLE[flow.state], params);
    $("door-where").textContent = t("door.where", params);
    const retrying = flow.state === "opening" && flow.attempt > 1;
    $("door-text").textContent = flow.state === "closing" ? closingText() : t(retrying ? "door.retry" : instruction);
    drawMap($("door-map"), state.status.compartments, flow.compartment);
  });
}

// A cancelled drop-off's door to shut: what to do if it will not, and whom to call.
function closingText() {
  const support = state.status.locker.support;
  const call = support ? ` ${t("error.support", { support })}` : "";
  return `${t("door.cancelled")} ${t("door.leave_hint")}${call}`;
}

// "The door will not shut" (or nobody there to shut it): the compartment needs a check.
$("door-leave").onclick = () => courier.dropoffAction("leave-unshut");

// -- scans and the event stream ----------------------------------------------------

function onScan(scan) {
  state.lastTouch = Date.now();
  const body = { scan: scan.id };
  const sending = state.screen === "send" || (state.screen === "home" && scan.kind === "send_code");
  if (sending) return sends.start(body);
  if (state.screen === "home") return scan.kind === "pickup_token" ? pickup(body) : courier.courierLogin(body);
  if (state.screen === "pin") return pickup(body);
  if (state.screen === "login") return courier.courierLogin(body);
  if (state.screen === "courier") return courier.dropoff(body);
}

let toastTimer = null;
function toast(key) {
  $("toast").textContent = t(key);
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 4000 * timeFactor());
}

async function resync() {
  const flow = state.flow;
  if (!flow) return;
  const path = { dropoff: "dropoffs", send: "sends", pickup: "pickups", collect: "collections" }[flow.kind];
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
  courier.layout(lang);
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

// Nobody shut a cancelled drop-off's door, and nobody is here: it is left for a check, and
// the kiosk goes home for the next person.
async function leaveUnshut() {
  const flow = state.flow;
  const path = flow.kind === "send" ? "sends" : "dropoffs";
  state.flow = null;
  try {
    await api("POST", `/api/${path}/${flow.id}/leave-unshut`, {});
  } catch (err) { /* shut meanwhile, or the session is gone: its closing settles it */ }
  goHome();
}

function idleCheck() {
  const idleS = state.status.kiosk.idle_s * timeFactor();
  const idle = Date.now() - state.lastTouch > idleS * 1000;
  const busy = state.flow && ACTIVE.includes(state.flow.state);
  const away = state.screen !== "home" || state.token || language !== state.status.kiosk.language
    || anyAccess();
  if (idle && state.flow && state.flow.state === "closing") leaveUnshut();
  else if (idle && !busy && away) goHome();
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
  for (const hint of document.querySelectorAll(".qr-hint")) hint.hidden = !hasCamera();
  await buildLanguages(status.kiosk.languages);
  await switchLanguage(status.kiosk.language);
  await startAccess();  // spoken prompts: access.js watches what the screen shows
  if (status.demo) state.demo = startDemo(api, status);
  connect();
  idleCheck();
  document.body.dataset.ready = "true";
}

start();
