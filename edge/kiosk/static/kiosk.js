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
    $("devices").replaceChildren(...items.map((d) => el("tr", {},
      el("td", {}, `${d.id} `, el("small", { class: "muted" }, d.kind)),
      el("td", { class: d.online ? "ok" : "bad" }, (d.online ? "online" : "offline") + (d.lock ? ` · ${d.lock}` : "")),
      el("td", d.battery !== null && d.battery < 20 ? { class: "bad" } : {}, d.battery === null ? "—" : `${d.battery}%`),
      el("td", {}, d.last_seen_local))));
  }

  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
    return node;
  };

  function environment(items) {
    $("environment").replaceChildren(...items.map((r) => {
      const range = r.low === null ? "" : `, from ${r.low.toFixed(1)} to ${r.high.toFixed(1)} ${r.unit}`;
      const svg = svgEl("svg", { viewBox: "0 0 288 72", width: "288", height: "72", role: "img",
        "aria-label": `${r.metric} today${range}` });
      svg.append(svgEl("path", { class: "grid-lines", d: "M72 0V72M144 0V72M216 0V72" }),
        svgEl("polyline", { fill: "none", stroke: "currentColor", "stroke-width": "2", points: r.points }));
      const hours = el("span", { class: "hours", "aria-hidden": "true" },
        ...["00", "06", "12", "18", "24"].map((h) => el("span", {}, h)));
      return el("li", {}, el("span", {}, `${r.device_id} ${r.metric}: `,
        el("strong", {}, r.latest === null ? "—" : String(r.latest)), ` ${r.unit}`), svg, hours);
    }));
  }

  function energy(e) {
    $("energy-today").textContent = e.today_kwh.toFixed(2);
    $("energy-yesterday").textContent = e.yesterday_kwh.toFixed(2);
    const chart = $("energy-chart");
    chart.setAttribute("aria-label", `Energy: today ${e.today_kwh.toFixed(2)} kWh, yesterday ${e.yesterday_kwh.toFixed(2)} kWh`);
    chart.querySelector(".bar-today").setAttribute("width", String(e.today_bar));
    chart.querySelector(".bar-yesterday").setAttribute("width", String(e.yesterday_bar));
    const rows = $("energy-meters");
    rows.replaceChildren(...e.meters.map((m) => el("tr", { "data-meter": m.id }, el("td", {}, m.id),
      el("td", {}, m.today_kwh.toFixed(2)), el("td", {}, m.yesterday_kwh.toFixed(2)))));
    if (!e.meters.length) rows.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "No energy meter registered.")));
  }

  const STATE_NAMES = { free: "free", booked: "booked", occupied: "occupied", no_show: "no-show" };
  const seatLabel = (s) => `Seat ${s.label}: ${STATE_NAMES[s.state]}` + (s.holder ? `, ${s.holder} until ${s.until}` : "");
  let seatLayout = "";

  function paintSeat(button, seat) {
    button.className = `seat s-${seat.state}`;
    button.dataset.state = seat.state;
    button.setAttribute("aria-label", seatLabel(seat));
    button.replaceChildren(seat.label, el("small", {}, STATE_NAMES[seat.state]));
  }

  function counts(zone) {
    return Object.keys(STATE_NAMES).map((k) => `${zone.counts[k]} ${STATE_NAMES[k]}`).join(" · ");
  }

  // Seats change state often but the layout rarely: repaint in place so a focused seat keeps focus.
  function seatMap(zones) {
    const map = $("seat-map");
    const layout = JSON.stringify(zones.map((z) => [z.name, z.seats.map((s) => s.seat_id)]));
    if (layout === seatLayout) {
      zones.forEach((zone, index) => {
        map.querySelectorAll(".zone .counts")[index].textContent = counts(zone);
        zone.seats.forEach((seat) => paintSeat(map.querySelector(`[data-seat-id="${seat.seat_id}"]`), seat));
      });
      return;
    }
    seatLayout = layout;
    map.replaceChildren(...zones.map((zone) => el("section", { class: "zone", "aria-label": `Zone ${zone.name}` },
      el("h3", {}, `${zone.name} `, el("span", { class: "counts" }, counts(zone))),
      el("ul", { class: "seats" }, ...zone.seats.map((seat) => {
        const button = el("button", { type: "button", "data-seat-id": seat.seat_id });
        paintSeat(button, seat);
        return el("li", {}, button);
      })))));
    if (!zones.length) map.append(el("p", { class: "muted" }, "No seats synced yet."));
  }

  function arrivals(items) {
    const list = $("arrivals");
    list.replaceChildren(...items.map((a) => el("li", a.late ? { class: "bad" } : {},
      el("time", {}, a.start_local), ` ${a.holder} · seat ${a.seat_label}`, ...(a.late ? [" ", el("em", {}, "late")] : []))));
    if (!items.length) list.append(el("li", { class: "muted" }, "Nobody else expected today."));
  }

  function render(view) {
    if (!view.ready) return;
    $("occupancy").textContent = String(view.occupancy);
    $("lockdown").hidden = !view.lockdown;
    feed(view.feed); alerts(view.alerts); devices(view.devices); environment(view.environment);
    energy(view.energy); seatMap(view.seat_map); arrivals(view.arrivals);
    $("sync-last").textContent = view.sync.last_success_local;
    $("sync-queue").textContent = String(view.sync.queue_depth);
    $("sync-dead").textContent = view.sync.dead_letters === null ? "n/a" : String(view.sync.dead_letters);
  }

  const seatsHost = $("seat-map");
  if (seatsHost) {
    seatsHost.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-seat-id]");
      if (button) $("seat-detail").textContent = button.getAttribute("aria-label");
    });
  }

  if (!main || !window.EventSource) return;
  const source = new EventSource("/api/live");
  source.addEventListener("snapshot", (event) => {
    render(JSON.parse(event.data));
    $("live-state").textContent = "live";
  });
  source.onerror = () => { $("live-state").textContent = "reconnecting…"; };
})();
