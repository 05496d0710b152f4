// The courier's screens: log in, drop off (the size chooser, the low-compartment toggle),
// and collect expired parcels and returns. kiosk.js owns the page (its screens, the API,
// the event stream) and hands its parts over in startCourier.
import { t } from "./i18n.js";
import { makePad } from "./pad.js";
import { makePages } from "./views.js";

const $ = (id) => document.getElementById(id);

// `kiosk`: { state, api, show, showMessage, showError, goHome, track, render, outbound }
// (`outbound(failed)`: send.js's list items of outbound parcels the courier's carrier takes).
export function startCourier(kiosk) {
  const { state, api, show, showMessage, showError, goHome, track } = kiosk;
  const me = { courier: null, lowReach: false, delivered: [], collectable: [] };
  const login = makePad($("login-pad"), $("login-display"), "keys", 64, true);
  const barcode = makePad($("barcode-pad"), $("barcode-display"), "keys", 64);
  // Both lists a page at a time, never scrolled: the newest drop-offs first shown.
  const delivered = makePages($("delivered"));
  const collections = makePages($("collections"));

  $("go-courier").onclick = () => { login.set(""); show("login"); };
  $("login-back").onclick = () => goHome(true);
  $("login-ok").onclick = () => courierLogin({ code: login.value });
  $("courier-finish").onclick = () => goHome();

  async function courierLogin(body) {
    try {
      const answer = await api("POST", "/api/courier/login", body);
      reset();
      state.token = answer.token;
      me.courier = answer.courier;
      openCourier(null);
    } catch (err) {
      login.set("");
      // A courier's lock-out is its own: no word of the residents' QR codes.
      const courierErr = err.code === "locked_out" ? { ...err, code: "courier_locked_out" } : err;
      showError(courierErr, () => show("login"));
    }
  }

  function openCourier(note) {
    barcode.set("");
    $("go-collections").hidden = !me.courier.rights.includes("collect");
    show("courier", () => {
      $("courier-title").textContent = t("courier.hello", { name: me.courier.name || me.courier.id });
      $("courier-note").textContent = note ? t(note.key, note.params) : "";
      delivered.set(me.delivered.map((flow) => {
        const item = document.createElement("li");
        item.textContent = t("courier.delivered_item", flow);
        return item;
      }), true);
    });
  }

  function courierError(err, back = () => openCourier(null)) {
    if (err.code === "session_expired") showError(err, goHome);
    else showError(err, back);
  }

  // The toggle's look is set only here, from what the next drop-off will send.
  function setLow(on) {
    me.lowReach = on;
    $("low").setAttribute("aria-pressed", String(on));
  }
  $("low").onclick = () => setLow(!me.lowReach);
  $("barcode-ok").onclick = () => dropoff({ barcode: barcode.value });

  async function dropoff(body) {
    try {
      track(await api("POST", "/api/dropoffs", { ...body, prefer_low: me.lowReach }));
    } catch (err) {
      courierError(err);
    }
  }

  async function dropoffAction(path, body) {
    try {
      const flows = state.flow.kind === "send" ? "sends" : "dropoffs";
      track(await api("POST", `/api/${flows}/${state.flow.id}/${path}`, body));
    } catch (err) {
      courierError(err, () => kiosk.render(state.flow));
    }
  }

  $("door-doesnt-fit").onclick = () => dropoffAction("doesnt-fit");
  $("door-cancel").onclick = () => dropoffAction("cancel");
  $("size-cancel").onclick = () => dropoffAction("cancel");
  $("no-low-cancel").onclick = () => dropoffAction("cancel");
  $("no-low-use").onclick = () => dropoffAction("any-height");

  $("go-collections").onclick = () => openCollections(null);
  $("collections-back").onclick = () => openCourier(null);

  async function openCollections(note) {
    let outbound;
    try {
      me.collectable = (await api("GET", "/api/collections")).parcels;
      outbound = await kiosk.outbound((err) => courierError(err, () => openCollections(null)));
    } catch (err) {
      return courierError(err);
    }
    show("collections", () => {
      $("collections-note").textContent = note ? t(note.key, note.params) : "";
      const items = me.collectable.map((parcel) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.textContent = t("collect.item", { compartment: parcel.compartment_id, barcode: parcel.barcode });
        button.onclick = () => collect(parcel.id);
        item.appendChild(button);
        return item;
      });
      items.push(...outbound);
      if (!items.length) items.push(Object.assign(document.createElement("li"), { textContent: t("collect.empty") }));
      collections.set(items);
    });
  }

  async function collect(parcelId) {
    try {
      track(await api("POST", "/api/collections", { parcel: parcelId }));
    } catch (err) {
      courierError(err, () => openCollections(null));
    }
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

  // No low compartment is free: the one out of reach that would be used, or cancel.
  function showNoLow(flow) {
    const id = flow.error.compartment;
    const place = state.status.compartments.find((c) => c.id === id) || {};
    show("no-low", () => {
      const params = { size: flow.offered_size, compartment: id, column: place.column, row: place.row };
      $("no-low-title").textContent = t("nolow.title", params);
      $("no-low-text").textContent = t("nolow.text", params);
      $("no-low-use").textContent = t("nolow.use", params);
    });
  }

  // A courier's flow that is not at a door: a size to choose, a question, or its end.
  function render(flow) {
    if (["need_size", "offer_size", "did_not_open"].includes(flow.state)) return showSizes(flow);
    if (flow.state === "no_low") return showNoLow(flow);
    state.flow = null;
    const view = { barcode: flow.barcode, compartment: flow.compartment };
    if (flow.kind === "collect") {
      if (flow.state === "failed") return courierError(flow.error, () => openCollections(null));
      return openCollections({ key: "collect.done", params: view });
    }
    if (flow.state === "stored") {
      me.delivered.push(view);
      return openCourier({ key: "courier.stored", params: view });
    }
    if (flow.state === "no_larger_size") {
      const support = state.status.locker.support;
      return showMessage("done.no_larger_title", "done.no_larger", { support }, () => openCourier(null));
    }
    if (flow.state === "failed") return courierError(flow.error);
    return openCourier(null);
  }

  // The session is over (logged out, idle, finished): nothing of it stays.
  function reset() {
    Object.assign(me, { courier: null, delivered: [], collectable: [] });
    setLow(false);
    login.set("");
    barcode.set("");
  }

  function layout(lang) {
    login.layout(lang);
    barcode.layout(lang);
  }

  return { courierLogin, dropoff, dropoffAction, render, reset, layout };
}
