// Live desk view: one EventSource; every snapshot redraws the panels with textContent (no HTML from data).
"use strict";
(function () {
  const main = document.getElementById("main");
  const csrf = main ? main.dataset.csrf : "";
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    children.forEach((c) => node.append(c));
    return node;
  };
  const hidden = (name, value) => el("input", { type: "hidden", name: name, value: value });

  function feed(items) {
    const list = $("feed");
    list.replaceChildren(...items.map((item) => el("li", { class: item.accepted ? "ok" : "bad" },
      el("time", {}, item.local), " ", el("span", {}, item.direction === "in" ? "IN" : "OUT"),
      ` ${item.who} @ ${item.door_id} `,
      el("em", {}, item.accepted ? item.method : `rejected: ${item.reason}`))));
    if (!items.length) list.append(el("li", { class: "muted" }, "No check-ins yet."));
  }

  function alerts(items) {
    const list = $("alerts");
    list.replaceChildren(...items.map((a) => el("li", {}, el("strong", {}, a.kind), ` ${a.message || ""} `,
      el("time", {}, a.local),
      el("form", { method: "post", action: "/actions/acknowledge", class: "inline" },
        hidden("csrf", csrf), hidden("alert_id", a.id),
        el("button", { type: "submit", class: "small", "aria-label": `Acknowledge ${a.kind}` }, "Acknowledge")))));
    if (!items.length) list.append(el("li", { class: "muted" }, "No open alerts."));
  }

  function devices(items) {
    $("devices").replaceChildren(...items.map((d) => el("tr", {}, el("td", {}, d.id),
      el("td", { class: d.online ? "ok" : "bad" }, (d.online ? "online" : "offline") + (d.battery ? ` · ${d.battery}%` : "")),
      el("td", {}, d.last_seen_local))));
  }

  function environment(items) {
    const ns = "http://www.w3.org/2000/svg";
    $("environment").replaceChildren(...items.map((r) => {
      const svg = document.createElementNS(ns, "svg");
      svg.setAttribute("viewBox", "0 0 240 48"); svg.setAttribute("width", "240"); svg.setAttribute("height", "48");
      svg.setAttribute("role", "img");
      const range = r.low === null ? "" : `, from ${r.low.toFixed(1)} to ${r.high.toFixed(1)}`;
      svg.setAttribute("aria-label", `${r.metric} today${range}`);
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("fill", "none"); line.setAttribute("stroke", "currentColor"); line.setAttribute("stroke-width", "2");
      line.setAttribute("points", r.points);
      svg.append(line);
      return el("li", {}, el("span", {}, `${r.device_id} ${r.metric}: `, el("strong", {}, r.latest === null ? "—" : String(r.latest))), svg);
    }));
  }

  function render(view) {
    if (!view.ready) return;
    $("occupancy").textContent = String(view.occupancy);
    $("lockdown").hidden = !view.lockdown;
    feed(view.feed); alerts(view.alerts); devices(view.devices); environment(view.environment);
    $("sync-last").textContent = view.sync.last_success_local;
    $("sync-queue").textContent = String(view.sync.queue_depth);
    $("sync-dead").textContent = view.sync.dead_letters === null ? "n/a" : String(view.sync.dead_letters);
  }

  if (!main || !window.EventSource) return;
  const source = new EventSource("/api/live");
  source.addEventListener("snapshot", (event) => {
    render(JSON.parse(event.data));
    $("live-state").textContent = "live";
  });
  source.onerror = () => { $("live-state").textContent = "reconnecting…"; };
})();
