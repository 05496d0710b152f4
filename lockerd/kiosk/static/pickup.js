// The resident's side of the door screen: how long the door has to open (a bar that
// fills as the wait runs out), "the door did not open" (the status-checked re-pulse
// now, then the way out), and what a door that would not open means for the parcel.
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
// The compartment of the pickup last shown: a failed flow no longer names it.
let lastDoor = null;
// The attempt whose wait the bar shows ("flow id/attempt").
let timing = "";
// The collected pickup whose door may be opened once more now (the grace period), if any.
let reopenable = null;
// The group pickup whose next door the resident may ask for now, if any.
let nextOf = null;

// Show the pickup parts of the door screen for `flow` (a pickup, or another kind: hidden).
export function pickupDoor(flow) {
  const pickup = flow.kind === "pickup";
  const opening = pickup && flow.state === "opening";
  if (pickup) lastDoor = flow.compartment;
  if (opening) $("door-not-open").hidden = false;
  const count = pickup && flow.parcels.total > 1;
  $("door-count").hidden = !count;
  if (count) $("door-count").textContent = t("door.parcel_of", { ...flow.parcels, compartment: flow.compartment });
  $("door-progress").hidden = !opening;
  if (opening) runBar(flow);
}

// The bar fills over the seconds this attempt's door has to be seen open.
function runBar(flow) {
  const key = `${flow.id}/${flow.attempt}`;
  if (key === timing) return;
  timing = key;
  const bar = $("door-progress-bar");
  const seconds = flow.open_within_s || 0;
  $("door-progress").setAttribute("aria-label", t("door.progress", { count: Math.ceil(seconds) }));
  // An animation (not a transition): it starts when the bar is shown, even where the
  // screen was still hidden when the wait began.
  bar.style.animation = "none";
  void bar.offsetWidth;
  bar.style.animation = `progress-fill ${seconds}s linear forwards`;
}

// The error to show for a pickup that ended with a door that would not open (the parcel
// stays behind it), or failed otherwise.
export function pickupError(flow) {
  if (flow.stuck.length) return { code: "pickup_stuck", compartment: flow.stuck.join(", ") };
  if (flow.error.code === "disputed_pickup") return { ...flow.error, compartment: lastDoor };
  if (flow.error.code !== "compartment_out_of_order") return flow.error;
  return { ...flow.error, code: "pickup_stuck", compartment: lastDoor };
}

// A group pickup between two doors (one recipient's parcels, one code): the last door's
// cycle is over and the locker is finding the next door to offer. The screen stays.
export function betweenDoors(flow) {
  const parcels = flow.kind === "pickup" && flow.parcels;
  const over = ["collected", "closed", "failed"].includes(flow.state);
  if (!parcels || parcels.index >= parcels.total || !over || flow.next_door) return false;
  $("door-text").textContent = t("door.next", parcels);
  $("door-not-open").hidden = true;
  $("door-progress").hidden = true;
  return true;
}

// The thanks' text key and its parameters: one parcel, or all of a group's.
export function collectedText(flow) {
  if (flow.next_door) return ["door.next", flow.parcels];
  const total = flow.parcels.total;
  return total > 1 ? ["done.collected_all", { count: total }] : ["done.collected", {}];
}

// "The door did not open" on a pickup: the status-checked re-pulse now; said again, the
// compartment goes out of service and the parcel stays in it.
export async function pickupNotOpen(api, flow) {
  return api("POST", `/api/pickups/${flow.id}/door-did-not-open`, {});
}

// After a pickup's door closed: "Open the door again" for `graceS` seconds, while the
// thanks stay on screen (`stillShown`); never for a door already opened again. The
// milliseconds it is offered (0: not offered).
export function offerReopen(flow, graceS, stillShown) {
  const button = $("message-reopen");
  if (flow.state !== "collected" || flow.reopen || !graceS) return 0;
  reopenable = flow;
  button.hidden = false;
  setTimeout(() => {
    if (reopenable === flow) reopenable = null;
    if (stillShown()) button.hidden = true;
  }, graceS * 1000);
  return graceS * 1000;
}

// A group pickup's door is over: "Open the next door (B4)" for `seconds`, while the
// message stays on screen (`stillShown`). Nobody asks: no door opens, the other parcels
// stay stored and their code still opens them. The milliseconds it is offered (0: not).
export function offerNext(flow, seconds, stillShown) {
  const button = $("message-next");
  if (!flow.next_door) return 0;
  nextOf = flow;
  button.textContent = t("done.next_door", { compartment: flow.next_door });
  button.hidden = false;
  setTimeout(() => {
    if (nextOf === flow) nextOf = null;
    if (stillShown()) button.hidden = true;
  }, seconds * 1000);
  return seconds * 1000;
}

// Open the next door offered by offerNext: the flow, opening it.
export async function openNext(api) {
  const flow = nextOf;
  nextOf = null;
  $("message-next").hidden = true;
  $("message-reopen").hidden = true;
  if (!flow) throw { code: "no_next_door" };
  return api("POST", `/api/pickups/${flow.id}/next-door`, {});
}

// Open the door of the pickup offered by offerReopen once more: the new flow.
export async function reopen(api) {
  const flow = reopenable;
  reopenable = null;
  nextOf = null;
  $("message-reopen").hidden = true;
  $("message-next").hidden = true;
  if (!flow) throw { code: "reopen_expired" };
  return api("POST", `/api/pickups/${flow.id}/reopen`, {});
}
