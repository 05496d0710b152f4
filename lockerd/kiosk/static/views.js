// Flow views as the page shows them: the newest of each recent flow, and the door's map.

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
