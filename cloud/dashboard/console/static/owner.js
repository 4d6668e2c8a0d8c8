// The owner's (and staff's) dashboard: every panel follows the library picked at the top.

import { ApiError, apiFetch, getJson, requestJson, requireRole, withQuery } from "./api.js";
import { bars, columns, heatmap } from "./charts.js";
import { badge, clock, h, loadPanel, money, number, percent, say, setPanel, stat, table, todayIn, when, wireSignOut } from "./dom.js";

const LIBRARY_KEY = "studyspot.console.library";
const state = { session: null, libraries: [], library: null, loads: new Map() };

const tz = () => state.library.timezone;
const libraryPath = (suffix) => `/api/v1/analytics/libraries/${state.library.id}/${suffix}`;
const libraryName = (id) => (state.libraries.find((library) => library.id === id) || { name: "—" }).name;

function revenueRange() {
  const today = todayIn(tz());
  const [year, month] = today.split("-").map(Number);
  const start = new Date(Date.UTC(year, month - 1 - 11, 1));
  return { from: start.toISOString().slice(0, 10), to: today };
}

const MONTH_KEY = /^(\d{4})-(\d{2})$/;

/** "2026-10" -> "Oct 26" so month columns stay narrow; other keys keep the API's label. */
function shortLabel(row) {
  const month = MONTH_KEY.exec(row.key);
  if (!month) return row.label || row.key;
  const first = new Date(Date.UTC(Number(month[1]), Number(month[2]) - 1, 1));
  return new Intl.DateTimeFormat("en-GB", { month: "short", year: "2-digit", timeZone: "UTC" }).format(first);
}

function revenueRows(rows) {
  return rows.map((row) => ({ label: shortLabel(row), value: row.net_minor, text: money(row.net_minor, row.currency) }));
}

function renderSummary(body, data) {
  body.append(
    h(
      "div",
      { class: "stats" },
      stat("bookings", String(data.bookings)),
      stat("no-show rate", percent(data.no_show_rate), `${data.no_shows} no-shows`),
      stat("check-ins today", String(data.checkins_today)),
      stat("occupied seat-hours", number(data.occupied_seat_hours, 0)),
      stat("energy", `${number(data.energy_kwh, 1)} kWh`),
      stat("kWh per occupied seat-hour", number(data.kwh_per_occupied_seat_hour, 2)),
    ),
  );
}

function renderOccupancy(body, data) {
  const busiest = [...data.cells].sort((a, b) => b.occupancy_ratio - a.occupancy_ratio)[0];
  body.append(heatmap(data.cells, `Average occupancy of ${data.seats} seats by weekday and hour, last ${data.days} days`));
  if (busiest) {
    const day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][busiest.weekday];
    body.append(h("p", { class: "hint", text: `Busiest: ${day} ${String(busiest.hour).padStart(2, "0")}:00, ${percent(busiest.occupancy_ratio)} full (times in ${data.timezone}).` }));
  }
}

function renderRevenue(body, [byMonth, byPlan, byMethod]) {
  const total = byMonth.rows.reduce((sum, row) => sum + row.net_minor, 0);
  const currency = (byMonth.rows[0] || byPlan.rows[0] || { currency: "INR" }).currency;
  body.append(h("p", { class: "total", text: `Net ${money(total, currency)} from ${byMonth.from} to ${byMonth.to}` }));
  body.append(h("h3", { text: "By month" }));
  body.append(byMonth.rows.length ? columns(revenueRows(byMonth.rows), "Net revenue by month") : h("p", { class: "na", text: "No payments in this range." }));
  body.append(h("h3", { text: "By plan" }));
  body.append(byPlan.rows.length ? bars(revenueRows(byPlan.rows), "Net revenue by plan") : h("p", { class: "na", text: "No payments in this range." }));
  if (byMethod.rows.length) {
    body.append(h("h3", { text: "By payment method" }));
    body.append(bars(revenueRows(byMethod.rows), "Net revenue by payment method"));
  }
}

async function downloadRevenueCsv() {
  const range = revenueRange();
  const path = withQuery("/api/v1/analytics/revenue", { group_by: "month", ...range, library_id: state.library.id, format: "csv" });
  const response = await apiFetch(path);
  if (!response.ok) {
    say(response.status === 404 ? "Revenue CSV is not available on this cloud yet." : `Could not download the CSV (HTTP ${response.status}).`, "error");
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: `revenue-by-month-${range.from}-${range.to}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const ENERGY_DAYS = 7;

/** kWh of each of the last 7 24-hour periods, from the summary's rolling windows ending now
 * (window k minus window k-1), plus kWh per occupied seat-hour over 7 and 30 days. */
function renderEnergy(body, windows) {
  const month = windows[windows.length - 1];
  const rows = [];
  for (let k = ENERGY_DAYS; k >= 1; k -= 1) {
    const kwh = windows[k - 1].energy_kwh - (k > 1 ? windows[k - 2].energy_kwh : 0);
    const seatHours = windows[k - 1].occupied_seat_hours - (k > 1 ? windows[k - 2].occupied_seat_hours : 0);
    const perSeatHour = seatHours > 0 ? ` · ${number(kwh / seatHours, 2)} kWh per seat-hour` : "";
    rows.push({ label: k === 1 ? "last 24 h" : `${k - 1}–${k} d ago`, value: Math.max(0, kwh), text: `${number(kwh, 1)} kWh`, tip: perSeatHour });
  }
  body.append(columns(rows, "Energy used in kWh per 24-hour period, the last 7 days"));
  body.append(h("p", { class: "hint", text: "kWh in each 24-hour period ending now." }));
  body.append(
    h(
      "div",
      { class: "stats" },
      stat("kWh / occupied seat-hour, 7 days", number(windows[ENERGY_DAYS - 1].kwh_per_occupied_seat_hour, 2)),
      stat("kWh / occupied seat-hour, 30 days", number(month.kwh_per_occupied_seat_hour, 2)),
      stat("kWh, 30 days", number(month.energy_kwh, 0)),
    ),
  );
}

/** One request per URL while a library loads (the summary and energy panels share windows). */
function sharedJson(path, params) {
  const key = withQuery(path, params);
  if (!state.loads.has(key)) state.loads.set(key, getJson(path, params));
  return state.loads.get(key);
}

function energyWindows() {
  const days = [...Array.from({ length: ENERGY_DAYS }, (_, i) => i + 1), 30];
  return Promise.all(days.map((count) => sharedJson(libraryPath("summary"), { days: count })));
}

function renderDues(body, rows) {
  const mine = rows.filter((row) => row.library_id === state.library.id);
  if (!mine.length) {
    body.append(h("p", { class: "na", text: "No dues for this library." }));
    return;
  }
  const kinds = { overdue: "bad", suspended: "bad", due: "warn", upcoming: "ok" };
  body.append(
    table(
      `Dues of ${state.library.name}`,
      ["Student", "Seat", "Plan", "Period", "Amount", "Due on", "Status"],
      mine.map((row) => [
        h("span", {}, row.student_name || "—", h("br"), h("small", { text: row.student_email })),
        row.seat_label || "—",
        row.plan_name,
        `${row.period_start} → ${row.period_end}`,
        money(row.amount_minor, row.currency),
        row.due_on,
        h("span", {}, badge(row.status, kinds[row.status] || "ok"), row.days_overdue > 0 ? ` ${row.days_overdue} days` : ""),
      ]),
    ),
  );
}

function renderForecast(body, data) {
  const mape = data.holdout_mape === null ? "" : `, ${percent(data.holdout_mape)} MAPE`;
  body.append(h("p", { class: "hint", text: `Model ${data.model}; error on the last ${data.holdout_days} held-out days: ${number(data.holdout_mae, 2)} seats MAE${mape}.` }));
  const row = (hour) => [when(hour.start, data.timezone), number(hour.expected_occupied, 1), h("span", {}, h("meter", { min: 0, max: 1, value: hour.expected_ratio, "aria-label": `${percent(hour.expected_ratio)} full` }), ` ${percent(hour.expected_ratio)}`)];
  body.append(table("Expected occupancy, next 24 hours", ["Hour", "Seats", "Full"], data.hours.slice(0, 24).map(row)));
  if (data.hours.length > 24) {
    body.append(h("details", {}, h("summary", { text: "The rest of the week" }), table("Expected occupancy, days 2 to 7", ["Hour", "Seats", "Full"], data.hours.slice(24).map(row))));
  }
}

function renderDevices(body, devices) {
  if (!devices.length) {
    body.append(h("p", { class: "na", text: "No edge devices yet." }));
    return;
  }
  const zoneOf = (device) => (state.libraries.find((library) => library.id === device.library_id) || state.library).timezone;
  body.append(
    table(
      "Edge devices of your libraries",
      ["Device", "Library", "State", "Last seen", "Version", "Queue", "Dead letters", "Clock skew"],
      devices.map((device) => [
        device.name,
        libraryName(device.library_id),
        device.revoked_at ? badge("revoked", "bad") : device.online ? badge("online", "ok") : badge(device.status === "pending" ? "not enrolled" : "offline", "warn"),
        when(device.last_seen_at, zoneOf(device)),
        device.agent_version || "—",
        String(device.queue_depth),
        String(device.dead_letters),
        device.clock_skew_seconds === null ? "—" : h("span", {}, `${number(device.clock_skew_seconds, 1)} s`, device.clock_skew_flagged ? badge("skewed", "bad") : ""),
      ]),
    ),
  );
}

function renderBookings(body, bookings) {
  if (!bookings.length) {
    body.append(h("p", { class: "na", text: "No bookings on this day." }));
    return;
  }
  body.append(
    table(
      `Bookings of ${state.library.name}, times in ${tz()}`,
      ["Time", "Seat", "Kind", "Status", "Price", "Checked in"],
      bookings.map((booking) => [
        `${clock(booking.start, tz())}–${clock(booking.end, tz())}`,
        booking.seat_label,
        booking.kind,
        booking.status,
        money(booking.price_minor, booking.currency),
        booking.checked_in_at ? clock(booking.checked_in_at, tz()) : "—",
      ]),
    ),
  );
}

async function setMemberStatus(member, status) {
  try {
    await requestJson(`/api/v1/tenant/members/${member.user_id}`, { method: "PATCH", json: { status } });
    say(`${member.email} is now ${status}.`);
  } catch (error) {
    say(`Could not change ${member.email}: ${error.message}`, "error");
  }
  loadStaff();
}

function renderStaff(body, members) {
  const isOwner = state.session.role === "library_owner";
  body.append(
    table(
      "Members of your organisation",
      ["Name", "Email", "Role", "Status", ""],
      members.map((member) => [
        member.full_name || "—",
        member.email,
        member.role === "library_owner" ? "owner" : "staff",
        member.status,
        isOwner && member.role !== "library_owner"
          ? h("button", { type: "button", class: "small", text: member.status === "active" ? "Revoke" : "Reactivate", "aria-label": `${member.status === "active" ? "Revoke" : "Reactivate"} ${member.email}`, onclick: () => setMemberStatus(member, member.status === "active" ? "revoked" : "active") })
          : "",
      ]),
    ),
  );
}

async function invite(event) {
  event.preventDefault();
  const email = document.getElementById("invite-email");
  const result = document.getElementById("invite-result");
  try {
    const invitation = await requestJson("/api/v1/tenant/invitations", { json: { email: email.value.trim(), role: document.getElementById("invite-role").value } });
    result.replaceChildren(`Invitation for ${invitation.email} created (valid until ${when(invitation.expires_at, state.library ? tz() : undefined)}). Give them this code to accept: `, h("code", { text: invitation.token }));
    email.value = "";
    loadStaff();
  } catch (error) {
    result.textContent = error instanceof ApiError && error.status === 422 ? "Enter a valid email address." : `Could not invite: ${error.message}`;
  }
}

function loadStaff() {
  return loadPanel("panel-staff", () => getJson("/api/v1/tenant/members"), renderStaff);
}

function loadDues() {
  const status = document.getElementById("dues-status").value;
  return loadPanel("panel-dues", () => getJson("/api/v1/tenant/dues", { status }), renderDues);
}

function loadBookings() {
  const date = document.getElementById("bookings-date").value || todayIn(tz());
  return loadPanel("panel-bookings", () => getJson(`/api/v1/libraries/${state.library.id}/bookings`, { date }), renderBookings);
}

function loadLibrary() {
  state.loads = new Map();
  document.getElementById("bookings-date").value = todayIn(tz());
  const range = revenueRange();
  const revenue = (groupBy) => getJson("/api/v1/analytics/revenue", { group_by: groupBy, ...range, library_id: state.library.id });
  return Promise.all([
    loadPanel("panel-summary", () => sharedJson(libraryPath("summary"), { days: 30 }), renderSummary),
    loadPanel("panel-occupancy", () => getJson(libraryPath("occupancy"), { days: 28 }), renderOccupancy),
    loadPanel("panel-revenue", () => Promise.all([revenue("month"), revenue("plan"), revenue("method")]), renderRevenue),
    loadPanel("panel-energy", energyWindows, renderEnergy),
    loadDues(),
    loadPanel("panel-forecast", () => getJson(libraryPath("forecast")), renderForecast),
    loadPanel("panel-devices", () => getJson("/api/v1/fleet/devices"), renderDevices),
    loadBookings(),
    loadStaff(),
  ]);
}

function pickLibrary(id) {
  state.library = state.libraries.find((library) => library.id === id) || state.libraries[0];
  sessionStorage.setItem(LIBRARY_KEY, state.library.id);
  document.getElementById("library").value = state.library.id;
  document.body.dataset.loaded = "";
  loadLibrary().then(() => (document.body.dataset.loaded = state.library.id));
}

async function start() {
  state.session = requireRole(["library_owner", "library_staff"]);
  if (!state.session) return;
  wireSignOut();
  if (state.session.role !== "library_owner") document.getElementById("invite-form").hidden = true;
  document.getElementById("invite-form").addEventListener("submit", invite);
  document.getElementById("revenue-csv").addEventListener("click", downloadRevenueCsv);
  document.getElementById("dues-status").addEventListener("change", loadDues);
  document.getElementById("bookings-date").addEventListener("change", loadBookings);
  try {
    state.libraries = await getJson("/api/v1/dashboard/libraries");
  } catch (error) {
    say(`Could not load your libraries: ${error.message}`, "error");
    return;
  }
  if (!state.libraries.length) {
    say("Your organisation has no libraries yet.", "error");
    for (const panel of document.querySelectorAll(".card .body")) setPanel(panel.parentElement.id, "empty", "");
    loadStaff();
    return;
  }
  const select = document.getElementById("library");
  select.replaceChildren(...state.libraries.map((library) => h("option", { value: library.id, text: library.name })));
  select.addEventListener("change", () => pickLibrary(select.value));
  pickLibrary(sessionStorage.getItem(LIBRARY_KEY));
}

start();
