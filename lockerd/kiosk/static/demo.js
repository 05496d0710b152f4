// The demo panel: the bank as a grid of simulated doors, the simulated scanners, and the
// messages a recipient would get. Shown only when the locker runs with kiosk.demo = true.
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export function startDemo(api, status) {
  const simulated = status.scanners.filter((s) => s.simulated);
  const camera = simulated.find((s) => s.type === "camera");
  let timer = null;

  async function door(id, action) {
    await api("POST", `/api/demo/doors/${id}/${action}`);
    changed();
  }

  function cell(c) {
    const box = document.createElement("div");
    box.className = `cell ${c.state}`;
    box.dataset.id = c.id;
    box.style.gridColumn = c.column;
    box.style.gridRow = c.row;
    const label = document.createElement("div");
    const low = c.low_reach ? " \u267F" : "";
    label.textContent = `${c.id} ${c.size}${low} · ${t(`state.${c.state}`)} · ` +
      `${t(`door_state.${c.door}`)} · ${t(c.sim.latched ? "demo.latched" : "demo.unlatched")}` +
      held(c);
    const button = document.createElement("button");
    button.textContent = t(c.sim.open ? "demo.close" : "demo.open", { compartment: c.id });
    button.onclick = () => door(c.id, c.sim.open ? "close" : "open");
    box.append(label, button);
    return box;
  }

  // What the compartment holds: an inbound parcel's barcode, or an outbound parcel.
  function held(c) {
    if (c.outbound) return ` · ${t(`demo.holds_${c.outbound.kind}`, c.outbound)}`;
    return c.parcel ? ` · ${t("demo.holds_parcel", { barcode: c.parcel })}` : "";
  }

  // One message per recipient, as a back office would send it: a pickup group's parcels
  // share one (the first one's code, which opens each of them).
  function perRecipient(messages) {
    const groups = new Map();
    const out = [];
    for (const m of messages) {
      const known = m.group && groups.get(m.group);
      if (!known) {
        const first = { ...m, count: 1 };
        if (m.group) groups.set(m.group, first);
        out.push(first);
        continue;
      }
      known.count += 1;
      known.barcode += `, ${m.barcode}`;
      known.compartment_id += `, ${m.compartment_id}`;
    }
    return out;
  }

  function message(m) {
    const item = document.createElement("li");
    const text = document.createElement("p");
    const key = m.count > 1 ? "demo.message_group" : "demo.message";
    text.textContent = t(key, { barcode: m.barcode, compartment: m.compartment_id, code: m.code, count: m.count });
    item.appendChild(text);
    if (m.qr) {
      const image = document.createElement("img");
      image.src = `/api/demo/qr.svg?text=${encodeURIComponent(m.qr)}`;
      image.alt = `QR ${m.barcode}`;
      item.appendChild(image);
      if (camera) {
        const show = document.createElement("button");
        show.textContent = t("demo.show_qr");
        show.onclick = () => api("POST", `/api/demo/scanners/${camera.name}`, { text: m.qr });
        item.appendChild(show);
      }
    }
    return item;
  }

  function scanners() {
    const box = document.createElement("div");
    const input = document.createElement("input");
    input.id = "demo-label";
    input.value = "JJD0001";
    input.setAttribute("aria-label", t("courier.barcode_label"));
    box.appendChild(input);
    for (const s of simulated) {
      const button = document.createElement("button");
      button.dataset.scanner = s.name;
      const format = s.type === "camera" ? "code128" : "qr";
      button.onclick = () => api("POST", `/api/demo/scanners/${s.name}`, { text: input.value, format });
      box.appendChild(button);
    }
    return box;
  }

  // A send code for each size, as the back office would issue it: its QR code, which
  // the simulated camera can be shown.
  function sendCodes() {
    const box = document.createElement("div");
    for (const size of status.sizes) {
      const button = document.createElement("button");
      button.dataset.size = size;
      button.onclick = () => issue(size);
      box.appendChild(button);
    }
    const issued = document.createElement("ul");
    issued.id = "demo-send-codes";
    issued.className = "list";
    box.appendChild(issued);
    return box;
  }

  async function issue(size) {
    const code = await api("POST", "/api/demo/send-codes", { size });
    const item = message({ barcode: code.reference, qr: code.code });
    item.querySelector("p").textContent = t("demo.send_issued", { reference: code.reference, size });
    $("demo-send-codes").replaceChildren(item);
  }

  async function refresh() {
    const bank = await api("GET", "/api/demo/bank");
    const grid = $("grid");
    grid.style.gridTemplateColumns = `repeat(${Math.max(...bank.compartments.map((c) => c.column))}, 1fr)`;
    grid.replaceChildren(...bank.compartments.map(cell));
    const messages = (await api("GET", "/api/demo/messages")).messages;
    const items = perRecipient(messages).map(message);
    if (!items.length) items.push(Object.assign(document.createElement("li"), { textContent: t("demo.no_messages") }));
    $("messages").replaceChildren(...items);
    for (const button of $("demo-send").querySelectorAll("button[data-size]")) {
      button.textContent = t("demo.send_code", { size: button.dataset.size });
    }
    for (const button of $("demo-scanners").querySelectorAll("button")) {
      button.textContent = t("demo.scanner", { scanner: button.dataset.scanner });
    }
  }

  // Events come in bursts (intent, pulse, door); one refresh after the burst is enough.
  function changed() {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(() => {}), 100);
  }

  $("demo").hidden = false;
  $("demo-scanners").replaceChildren(scanners());
  $("demo-send").replaceChildren(sendCodes());
  refresh();
  return { changed };
}
