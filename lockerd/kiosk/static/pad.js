// On-screen keypads: digits for pickup codes; digits and letters for courier codes and labels.
const LAYOUTS = {
  digits: [..."123456789", "clear", "0", "delete"],
  keys: [..."1234567890QWERTYUIOPASDFGHJKL-ZXCVBNM", "delete", "clear"],
};

export function makePad(container, display, layout, maxLength) {
  const pad = { value: "" };
  const render = () => { display.textContent = pad.value; };
  for (const key of LAYOUTS[layout]) {
    const button = document.createElement("button");
    button.type = "button";
    if (key === "clear" || key === "delete") {
      button.dataset.i18n = `pad.${key}`;
      button.dataset.i18nLabel = `pad.${key}_label`;
      if (layout === "keys") button.className = "wide";
    } else {
      button.textContent = key;
    }
    button.onclick = () => {
      if (key === "clear") pad.value = "";
      else if (key === "delete") pad.value = pad.value.slice(0, -1);
      else if (pad.value.length < maxLength) pad.value += key;
      render();
    };
    container.appendChild(button);
  }
  pad.set = (value) => { pad.value = value; render(); };
  return pad;
}
