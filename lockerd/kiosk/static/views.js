// Flow views as the page shows them: the newest of each recent flow, and the door's map.
import { t } from "./i18n.js";

// The newest view of each recent flow, from POST responses and the event stream, which
// may arrive in either order: a view older than one already shown is never shown.
const newest = new Map();
const shown = new Map();

export function remember(view) {
  const known = newest.get(view.id);
  if (known && known.revision > view.revision) return known;
  newest.set(view.id, view);
  if (newest.size > 32) newest.delete(newest.keys().next().value);
  return view;
}

// The newest view of `flow` if the page may show it now, else null (one newer was shown).
export function toShow(flow) {
  const view = remember(flow);
  if (view.revision < (shown.get(view.id) ?? -1)) return null;
  shown.set(view.id, view.revision);
  if (shown.size > 32) shown.delete(shown.keys().next().value);
  return view;
}

// The bank in `map` as seen from the front, compartment `here` marked.
export function drawMap(map, cells, here) {
  map.style.gridTemplateColumns = `repeat(${Math.max(...cells.map((c) => c.column))}, 1fr)`;
  map.replaceChildren(...cells.map((c) => {
    const cell = document.createElement("div");
    cell.style.gridColumn = c.column;
    cell.style.gridRow = c.row;
    cell.textContent = c.id;
    if (c.id === here) cell.className = "here";
    return cell;
  }));
}

// `list` (a list whose box the layout sizes, not its items) shown a page at a time: as
// many items as its box holds, with Previous, "3–6 of 8" and Next under it, laid out
// again whenever the box changes size (another display, larger text). `set(items,
// last)`: the items, on the first page (or on the last, the newest items, with `last`).
export function makePages(list) {
  const pager = document.createElement("div");
  pager.className = "pager";
  pager.hidden = true;
  const turn = (key, step) => {
    const button = document.createElement("button");
    Object.assign(button.dataset, { i18n: key, page: step > 0 ? "next" : "previous" });
    button.textContent = t(key);
    button.onclick = () => { anchor = Math.max(0, start + step * per); draw(); };
    return button;
  };
  const range = Object.assign(document.createElement("span"), { className: "range" });
  range.setAttribute("role", "status");
  const [previous, next] = [turn("list.previous", -1), turn("list.next", 1)];
  pager.append(previous, range, next);
  list.after(pager);
  let items = [];
  // An item the page shown holds (it stays when the page size changes), the first item
  // of that page, and how many items a page holds.
  let anchor = 0;
  let start = 0;
  let per = 0;

  function draw() {
    if (!list.getClientRects().length) return;  // not shown: drawn when it is
    list.replaceChildren(...items);
    pager.hidden = list.scrollHeight <= list.clientHeight + 1;
    if (pager.hidden) return;
    const bottom = list.getBoundingClientRect().bottom + 0.5;
    per = Math.max(1, items.filter((item) => item.getBoundingClientRect().bottom <= bottom).length);
    const held = Math.min(anchor, items.length - 1);
    start = held - (held % per);
    const shown = items.slice(start, start + per);
    list.replaceChildren(...shown);
    const at = { first: start + 1, last: start + shown.length, count: items.length };
    range.textContent = shown.length === 1 ? t("list.one", at) : t("list.range", at);
    previous.disabled = start === 0;
    next.disabled = start + per >= items.length;
  }

  new ResizeObserver(draw).observe(list);
  return {
    set(all, last = false) {
      items = all;
      anchor = last ? items.length - 1 : 0;
      draw();
    },
  };
}
