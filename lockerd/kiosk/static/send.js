// Sending and returning a parcel: a member of the public types the send code the back
// office issued, or shows its QR code to the camera, and the door of a compartment of
// its size opens. The door and size screens are the courier's drop-off ones (kiosk.js); this
// module starts the flow, ends it, and lists outbound parcels for a courier to collect.
import { t } from "./i18n.js";
import { makePad } from "./pad.js";

const $ = (id) => document.getElementById(id);

// `k`: what kiosk.js lends: api, show, track, showError, showMessage, goHome, and
// support() (the configured contact, "" without one).
export function startSend(k) {
  const pad = makePad($("send-pad"), $("send-display"), "digits", 12);
  // "I need a lower compartment", as the courier's: its look is set only here, from what
  // the next send will ask; the end of the visit (kiosk.js goHome) turns it off.
  const me = { lowReach: false };
  const setLow = (on) => {
    me.lowReach = on;
    $("send-low").setAttribute("aria-pressed", String(on));
  };
  $("send-low").onclick = () => setLow(!me.lowReach);
  $("go-send").onclick = () => { pad.set(""); k.show("send"); };
  $("send-back").onclick = () => k.goHome(true);
  $("send-ok").onclick = () => start(k, pad, { code: pad.value, prefer_low: me.lowReach });
  return {
    start: (body) => start(k, pad, { ...body, prefer_low: me.lowReach }),
    reset: () => setLow(false),
    finish: (flow) => finish(k, flow),
    outbound: (failed) => outboundItems(k, failed),
  };
}

async function start(k, pad, body) {
  try {
    k.track(await k.api("POST", "/api/sends", body));
  } catch (err) {
    pad.set("");
    k.showError(err, () => k.show("send"));
  }
}

function finish(k, flow) {
  if (flow.state === "stored") {
    return k.showMessage("send.done_title", "send.done", { compartment: flow.compartment }, k.goHome);
  }
  if (flow.state === "no_larger_size") {
    return k.showMessage("done.no_larger_title", "send.no_larger", { support: k.support() }, k.goHome);
  }
  if (flow.state === "failed") return k.showError(flow.error, k.goHome);
  return k.goHome();
}

// The outbound parcels the logged-in courier's carrier takes, as list items whose
// button opens the door (a refusal goes to `failed`).
async function outboundItems(k, failed) {
  const collect = async (id) => {
    try {
      k.track(await k.api("POST", "/api/outbound", { outbound: id }));
    } catch (err) {
      failed(err);
    }
  };
  const parcels = (await k.api("GET", "/api/outbound")).parcels;
  return parcels.map((parcel) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    const params = { compartment: parcel.compartment_id, reference: parcel.reference };
    button.textContent = t(`collect.outbound_${parcel.kind}`, params);
    button.onclick = () => collect(parcel.id);
    item.appendChild(button);
    return item;
  });
}
