// Small DOM and formatting helpers shared by the pages. Data only ever goes in through
// textContent / attributes, never as HTML.

import { ApiError, signOut } from "./api.js";

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function panelBody(panelId) {
  return document.querySelector(`#${panelId} .body`);
}

export function setPanel(panelId, state, ...content) {
  const body = panelBody(panelId);
  body.dataset.state = state;
  body.replaceChildren(...content);
  return body;
}

/** Fetch, then render; 404 shows "not available", 403 "not for your role", others the error. */
export async function loadPanel(panelId, fetcher, render) {
  setPanel(panelId, "loading", "Loading…");
  try {
    const data = await fetcher();
    setPanel(panelId, "ready");
    render(panelBody(panelId), data);
  } catch (error) {
    showPanelError(panelId, error);
  }
}

export function showPanelError(panelId, error) {
  if (error instanceof ApiError && error.status === 404) {
    setPanel(panelId, "unavailable", h("p", { class: "na", text: "Not available: this cloud does not provide this data yet." }));
  } else if (error instanceof ApiError && error.status === 403) {
    setPanel(panelId, "forbidden", h("p", { class: "na", text: "Not available for your role." }));
  } else {
    setPanel(panelId, "error", h("p", { class: "error", text: `Could not load: ${error.message}` }));
  }
}

export function say(text, kind = "info") {
  const message = document.getElementById("message");
  message.textContent = text;
  message.dataset.kind = kind;
}

export function table(caption, headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col", text: name })))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

export function stat(label, value, note) {
  return h("div", { class: "stat" }, h("span", { class: "stat-value", text: value }), h("span", { class: "stat-label", text: label }), note ? h("span", { class: "stat-note", text: note }) : null);
}

const fractionDigits = new Map();

function digitsOf(currency) {
  if (!fractionDigits.has(currency)) {
    const options = new Intl.NumberFormat("en-IN", { style: "currency", currency }).resolvedOptions();
    fractionDigits.set(currency, options.maximumFractionDigits);
  }
  return fractionDigits.get(currency);
}

/** Integer minor units + ISO currency, formatted (₹1,234.50). */
export function money(minor, currency) {
  const digits = digitsOf(currency);
  return new Intl.NumberFormat("en-IN", { style: "currency", currency }).format(minor / 10 ** digits);
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)}%`;
}

export function number(value, digits = 1) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

/** A time in the given zone (the library's), e.g. "Tue 24 Nov, 14:05". */
export function when(iso, timeZone) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: timeZone ? undefined : "short",
  }).format(new Date(iso));
}

export function clock(iso, timeZone) {
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

/** Today's date (YYYY-MM-DD) in a zone. */
export function todayIn(timeZone, offsetDays = 0) {
  const moment = new Date(Date.now() + offsetDays * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(moment);
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}`, text });
}

export function wireSignOut() {
  const button = document.getElementById("sign-out");
  if (button) button.addEventListener("click", () => signOut(""));
}
