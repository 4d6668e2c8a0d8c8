// StudySpot student pages: calls the cloud's JSON API with bearer tokens kept in sessionStorage.
// No framework, no inline script (the CSP forbids it); every page runs `pages[body.dataset.page]`.
"use strict";

const TOKENS = { access: "studyspot.access", refresh: "studyspot.refresh" };
const PENDING_PAYMENT = "studyspot.pendingPayment";

// ---------- small helpers ----------

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function toast(message) {
  $("toast").textContent = message;
}

function money(minor, currency) {
  const format = new Intl.NumberFormat("en-IN", { style: "currency", currency: currency || "INR" });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}

function when(iso, timeZone, options) {
  return new Intl.DateTimeFormat("en-IN", { timeZone, ...options }).format(new Date(iso));
}

function slotText(start, end, timeZone) {
  const day = when(start, timeZone, { weekday: "short", day: "numeric", month: "short" });
  const time = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  return `${day}, ${when(start, timeZone, time)}–${when(end, timeZone, time)}`;
}

// a plain local date (YYYY-MM-DD) as "Fri, 27 Nov"
function dayText(date) {
  return when(`${date}T12:00:00Z`, "UTC", { weekday: "short", day: "numeric", month: "short" });
}

// today's date (YYYY-MM-DD) in a time zone
function localDate(timeZone, date = new Date()) {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(date);
}

// milliseconds the zone's wall clock is ahead of UTC at `instant`
function zoneOffset(timeZone, instant) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(instant));
  const part = (type) => Number(parts.find((p) => p.type === type).value);
  const wall = Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
  return wall - instant;
}

// a wall time (date "YYYY-MM-DD", minutes after midnight) in `timeZone` as an ISO instant
function zonedInstant(date, minutes, timeZone) {
  const [y, m, d] = date.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d) + minutes * 60000;
  let instant = guess - zoneOffset(timeZone, guess);
  instant = guess - zoneOffset(timeZone, instant); // settle across a DST change
  return new Date(instant).toISOString();
}

function hhmm(minutes) {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

function errorText(response) {
  const error = response.data && response.data.error;
  return error ? error.message : `request failed (${response.status})`;
}

// ---------- API with token refresh ----------

function loggedIn() {
  return Boolean(sessionStorage.getItem(TOKENS.access));
}

function storeTokens(pair) {
  sessionStorage.setItem(TOKENS.access, pair.access_token);
  sessionStorage.setItem(TOKENS.refresh, pair.refresh_token);
}

function clearTokens() {
  sessionStorage.removeItem(TOKENS.access);
  sessionStorage.removeItem(TOKENS.refresh);
}

async function refreshTokens() {
  const refresh = sessionStorage.getItem(TOKENS.refresh);
  if (!refresh) return false;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: refresh }),
  });
  if (!response.ok) {
    clearTokens();
    return false;
  }
  storeTokens(await response.json());
  return true;
}

async function rawCall(path, options, asBlob) {
  const headers = { ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKENS.access);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  if (asBlob && response.ok) data = await response.blob();
  else if ((response.headers.get("content-type") || "").includes("json")) data = await response.json();
  return { status: response.status, ok: response.ok, data };
}

function goLogin() {
  const next = location.pathname + location.search;
  location.assign(`/app/login?next=${encodeURIComponent(next)}`);
}

// `api(path, {method, body, auth})`: on 401 refreshes once; `auth: true` sends to login when that fails
async function api(path, options = {}, asBlob = false) {
  let response = await rawCall(path, options, asBlob);
  if (response.status === 401 && (await refreshTokens())) response = await rawCall(path, options, asBlob);
  if (response.status === 401 && options.auth) goLogin();
  return response;
}

function requireLogin() {
  if (loggedIn()) return true;
  goLogin();
  return false;
}

function checkouts() {
  return JSON.parse(document.body.dataset.checkouts || "{}");
}

// ---------- payment ----------

async function startPayment(booking, provider) {
  const response = await api("/api/v1/payments/orders", {
    method: "POST", body: { booking_id: booking.id, provider }, auth: true,
  });
  if (!response.ok) return errorText(response);
  const order = response.data;
  sessionStorage.setItem(PENDING_PAYMENT, JSON.stringify({ booking_id: booking.id, provider, order_ref: order.order_ref }));
  const back = `${location.origin}/app/pay/return?booking=${encodeURIComponent(booking.id)}`;
  location.assign(`${checkouts()[provider]}${encodeURIComponent(order.order_ref)}?return_url=${encodeURIComponent(back)}`);
  return "";
}

function providerSelect(select) {
  select.replaceChildren();
  for (const provider of Object.keys(checkouts())) {
    select.append(el("option", { value: provider }, provider[0].toUpperCase() + provider.slice(1)));
  }
  return select.options.length > 0;
}

// ---------- pages ----------

const pages = {};

pages.login = () => {
  const next = new URLSearchParams(location.search).get("next");
  const target = next && next.startsWith("/app") ? next : "/app/search";
  async function login(email, password, errorBox) {
    const response = await api("/api/v1/auth/login", { method: "POST", body: { email, password } });
    if (!response.ok) {
      errorBox.textContent = response.status === 401 ? "Wrong email or password." : errorText(response);
      return;
    }
    storeTokens(response.data);
    location.assign(target);
  }
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    login($("login-email").value.trim(), $("login-password").value, $("login-error"));
  });
  $("register-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      email: $("register-email").value.trim(),
      password: $("register-password").value,
      full_name: $("register-name").value.trim(),
    };
    if (body.password.length < 8) {
      $("register-error").textContent = "The password needs at least 8 characters.";
      return;
    }
    const response = await api("/api/v1/auth/register", { method: "POST", body });
    if (!response.ok) {
      $("register-error").textContent = errorText(response);
      return;
    }
    await login(body.email, body.password, $("register-error"));
  });
};

pages.search = () => {
  let near = null;
  const form = $("search-form");
  async function run() {
    const params = new URLSearchParams();
    const q = $("q").value.trim();
    if (q) params.set("q", q);
    for (const box of form.querySelectorAll("input[name=amenities]:checked")) params.append("amenities", box.value);
    const maxPrice = $("max-price").value;
    if (maxPrice !== "") params.set("max_price", String(Math.round(Number(maxPrice) * 100)));
    if (near) {
      params.set("lat", near.lat);
      params.set("lon", near.lon);
      params.set("radius_km", $("radius").value || "10");
    }
    $("results-status").textContent = "Searching…";
    const response = await api(`/api/v1/libraries?${params}`);
    if (!response.ok) {
      $("results-status").textContent = errorText(response);
      return;
    }
    renderResults(response.data.items);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  $("near-me").addEventListener("click", () => {
    if (near) {
      near = null;
      $("near-me").setAttribute("aria-pressed", "false");
      $("near-status").textContent = "";
      run();
      return;
    }
    if (!navigator.geolocation) {
      $("near-status").textContent = "This browser cannot share your location.";
      return;
    }
    $("near-status").textContent = "Finding you…";
    navigator.geolocation.getCurrentPosition(
      (position) => {
        near = { lat: position.coords.latitude.toFixed(5), lon: position.coords.longitude.toFixed(5) };
        $("near-me").setAttribute("aria-pressed", "true");
        $("near-status").textContent = "Showing libraries near you.";
        run();
      },
      () => { $("near-status").textContent = "Location not shared: search by name instead."; },
      { timeout: 10000 },
    );
  });
  run();
};

function renderResults(items) {
  $("results-status").textContent = items.length ? `${items.length} found` : "No library matches. Try fewer filters.";
  $("results").replaceChildren(...items.map((hit) => {
    const facts = [
      hit.min_price_minor !== null ? `from ${money(hit.min_price_minor, hit.currency)}` : null,
      hit.open_now ? "open now" : "closed now",
      hit.rank.distance_m !== null ? `${(hit.rank.distance_m / 1000).toFixed(1)} km away` : null,
    ].filter(Boolean).join(" · ");
    return el("li", { class: "item" },
      el("h3", {}, el("a", { href: `/app/libraries/${hit.id}` }, hit.name)),
      el("p", { class: "muted" }, hit.address),
      el("p", {}, facts),
      hit.amenities.length ? el("p", { class: "tags" }, hit.amenities.join(" · ")) : null);
  }));
}

// ----- library page -----

pages.library = async () => {
  const id = document.body.dataset.libraryId;
  const [libraryResponse, plansResponse] = await Promise.all([
    api(`/api/v1/libraries/${id}`), api(`/api/v1/libraries/${id}/plans`),
  ]);
  if (!libraryResponse.ok) {
    $("lib-name").textContent = "Library not found";
    return;
  }
  const library = libraryResponse.data;
  const plans = plansResponse.ok ? plansResponse.data.filter((plan) => plan.active) : [];
  document.title = `${library.name} · StudySpot`;
  $("lib-name").textContent = library.name;
  $("lib-address").textContent = `${library.address} · times in ${library.timezone}`;
  $("lib-amenities").textContent = library.amenities.join(" · ");
  renderPlans(plans);
  const booking = new BookingForm(library, plans);
  booking.init();
  showBestTime(library, $("date").value);
  $("date").addEventListener("change", () => showBestTime(library, $("date").value));
  new LiveSeats(library).start();
};

function planText(plan) {
  const unit = { hourly: "per hour", day_pass: "per day", monthly: "per month" }[plan.kind] || plan.kind;
  const shift = plan.shift_start ? ` (${plan.shift_start.slice(0, 5)}–${plan.shift_end.slice(0, 5)})` : "";
  return `${plan.name}${shift}: ${money(plan.price_minor, plan.currency)} ${unit}`;
}

function renderPlans(plans) {
  $("plans").replaceChildren(...plans.map((plan) => el("li", {}, planText(plan))));
}

async function showBestTime(library, date) {
  const response = await api(`/api/v1/libraries/${library.id}/best-time?date=${date}`);
  const hint = response.ok ? response.data : null;
  // no forecast (404), a date out of its range (422) or nothing to say: show nothing
  $("best-time").hidden = !hint || !(hint.hint || (hint.suggestions || []).length);
  if ($("best-time").hidden) return;
  $("best-hint").textContent = hint.hint;
  $("best-list").replaceChildren(...(hint.suggestions || []).map((s) =>
    el("li", {}, `${slotText(s.start, s.end, library.timezone)}: about ${Math.round(s.expected_ratio * 100)}% full`)));
  $("best-time").hidden = false;
}

class LiveSeats {
  constructor(library) {
    this.library = library;
    this.seats = new Map();
    this.seq = 0;
    this.retried = false;
  }

  start() {
    if (!loggedIn()) {
      $("live-state").textContent = "Log in to follow seats live; showing this hour.";
      this.fromAvailability();
      return;
    }
    this.connect();
  }

  async fromAvailability() {
    const tz = this.library.timezone;
    const now = new Date();
    const hour = Number(new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", hourCycle: "h23" }).format(now));
    const params = new URLSearchParams({ date: localDate(tz, now), start: hhmm(hour * 60), end: hhmm(hour * 60 + 60) });
    const response = await api(`/api/v1/libraries/${this.library.id}/availability?${params}`);
    if (!response.ok) return;
    this.seats = new Map(response.data.seats.map((s) => [s.seat_id, { label: s.label, zone: s.zone, state: s.free ? "free" : "booked" }]));
    this.render();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const token = encodeURIComponent(sessionStorage.getItem(TOKENS.access) || "");
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/libraries/${this.library.id}/live?token=${token}`);
    socket.addEventListener("message", (event) => this.onMessage(socket, JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.onClose(event));
  }

  async onClose(event) {
    $("live-state").textContent = "live updates paused";
    if (event.code === 4401 && !this.retried) {
      this.retried = true;
      if (await refreshTokens()) this.connect();
      else this.fromAvailability();
      return;
    }
    if (event.code !== 4404) setTimeout(() => this.connect(), 5000);
  }

  onMessage(socket, message) {
    if (message.type === "snapshot") {
      this.seq = message.seq;
      this.seats = new Map(message.seats.map((s) => [s.seat_id, s]));
      $("live-state").textContent = "live";
      this.render();
      return;
    }
    if (message.seq !== this.seq + 1) {
      socket.close(); // a gap: reconnect for a fresh snapshot
      return;
    }
    this.seq = message.seq;
    const seat = this.seats.get(message.seat_id);
    const now = Date.now();
    if (!seat || now < Date.parse(message.start) || now >= Date.parse(message.end)) return;
    seat.state = { booked: "booked", occupied: "occupied", released: "free", vacated: "free" }[message.event] || seat.state;
    this.render();
  }

  render() {
    const seats = [...this.seats.values()];
    $("free-now").textContent = String(seats.filter((s) => s.state === "free").length);
    $("seats-total").textContent = String(seats.length);
    $("seat-map").replaceChildren(...seats.map((s) =>
      el("li", { class: `seat ${s.state}`, title: `${s.label}: ${s.state}` }, el("span", {}, s.label), el("small", {}, s.state))));
  }
}

class BookingForm {
  constructor(library, plans) {
    this.library = library;
    this.plans = plans.filter((plan) => plan.kind === "hourly" || plan.kind === "day_pass");
    this.tz = library.timezone;
  }

  init() {
    if (!this.plans.length) {
      $("book-form").hidden = true;
      $("book-error").textContent = "This library sells no hourly or day passes online: ask at the desk.";
      $("book-form").after($("book-error"));
      return;
    }
    $("plan").replaceChildren(...this.plans.map((plan) => el("option", { value: plan.id }, planText(plan))));
    $("date").value = localDate(this.tz);
    $("date").min = localDate(this.tz);
    for (const id of ["plan", "date", "start", "hours"]) $(id).addEventListener("change", () => this.refresh());
    $("book-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    $("join-waitlist").addEventListener("click", () => this.joinWaitlist());
    this.refresh();
  }

  plan() {
    return this.plans.find((plan) => plan.id === $("plan").value);
  }

  window() {
    const start = Number($("start").value.split(":")[0]) * 60 + Number($("start").value.split(":")[1] || 0);
    const end = Math.min(start + Number($("hours").value || 1) * 60, 24 * 60);
    return { start, end };
  }

  async refresh() {
    const plan = this.plan();
    if (!plan) return;
    const hourly = plan.kind === "hourly";
    for (const node of document.querySelectorAll(".hourly-only")) node.hidden = !hourly;
    const params = new URLSearchParams({ date: $("date").value });
    if (hourly) {
      const { start, end } = this.window();
      params.set("start", hhmm(start));
      params.set("end", hhmm(end));
      $("price").textContent = `Price: ${money(plan.price_minor * ((end - start) / 60), plan.currency)}`;
    } else {
      $("price").textContent = `Price: ${money(plan.price_minor, plan.currency)}`;
    }
    const asked = (this.asked = (this.asked || 0) + 1);
    const response = await api(`/api/v1/libraries/${this.library.id}/availability?${params}`);
    if (asked !== this.asked) return; // a newer change is being looked up: only the latest answer counts
    const seats = response.ok ? response.data.seats : [];
    const free = seats.filter((seat) => seat.free);
    const chosen = $("seat").value;
    $("seat").replaceChildren(...seats.map((seat) =>
      el("option", { value: seat.seat_id, disabled: !seat.free }, `${seat.label} · ${seat.zone}${seat.free ? "" : " (taken)"}`)));
    const keep = free.find((seat) => seat.seat_id === chosen) || free[0];
    if (keep) $("seat").value = keep.seat_id;
    $("waitlist-box").hidden = !(plan.kind === "day_pass" && response.ok && free.length === 0);
    $("book-error").textContent = response.ok ? "" : errorText(response);
  }

  body(seatId, start, end) {
    const plan = this.plan();
    const body = { plan_id: plan.id, seat_id: seatId };
    if (plan.kind === "day_pass") body.date = $("date").value;
    else Object.assign(body, { start, end });
    return body;
  }

  submit() {
    const { start, end } = this.window();
    const date = $("date").value;
    this.book(this.body($("seat").value, zonedInstant(date, start, this.tz), zonedInstant(date, end, this.tz)));
  }

  async book(body) {
    if (!requireLogin()) return;
    $("book-error").textContent = "";
    $("alternatives").hidden = true;
    const response = await api("/api/v1/bookings", { method: "POST", body, auth: true });
    if (response.status === 409) {
      this.showConflict(response);
      return;
    }
    if (!response.ok) {
      $("book-error").textContent = errorText(response);
      return;
    }
    this.booked(response.data);
  }

  async showConflict(response) {
    await this.refresh(); // the seat list was stale: show what is free now
    $("book-error").textContent = errorText(response);
    const alternatives = (response.data.error.details || {}).alternatives || [];
    if (this.plan().kind === "day_pass" && !alternatives.length) $("waitlist-box").hidden = false;
    if (!alternatives.length) return;
    $("alt-list").replaceChildren(...alternatives.map((alt) => el("li", {},
      el("button", {
        type: "button", class: "secondary",
        onclick: () => this.book(this.body(alt.seat_id, alt.start, alt.end)),
      }, `Book ${alt.seat_label}, ${slotText(alt.start, alt.end, this.tz)}`))));
    $("alternatives").hidden = false;
  }

  booked(booking) {
    if (booking.status !== "pending_payment") {
      toast(`Booked seat ${booking.seat_label}.`);
      location.assign("/app/bookings");
      return;
    }
    $("pay-summary").textContent =
      `Seat ${booking.seat_label}, ${slotText(booking.start, booking.end, booking.timezone)}: ${money(booking.price_minor, booking.currency)}. ` +
      "The seat is held for you until you pay.";
    $("pay-box").hidden = false;
    $("pay").disabled = !providerSelect($("provider"));
    if ($("pay").disabled) $("pay-error").textContent = "Online payment is not set up here: pay at the desk.";
    $("pay").onclick = async () => {
      $("pay").disabled = true; // one order per click: the page is about to leave for the checkout
      const error = await startPayment(booking, $("provider").value);
      $("pay-error").textContent = error;
      if (error) $("pay").disabled = false;
    };
    $("pay-box").scrollIntoView();
    $("pay").focus();
  }

  async joinWaitlist() {
    if (!requireLogin()) return;
    const response = await api(`/api/v1/libraries/${this.library.id}/waitlist`, {
      method: "POST", body: { plan_id: this.plan().id, date: $("date").value }, auth: true,
    });
    toast(response.ok ? "You are on the waitlist: we will tell you when a seat frees up." : errorText(response));
  }
}

// ----- payment return -----

pages["pay-return"] = async () => {
  if (!requireLogin()) return;
  const query = new URLSearchParams(location.search);
  const bookingId = query.get("booking");
  const pending = JSON.parse(sessionStorage.getItem(PENDING_PAYMENT) || "{}");
  if (query.get("status") !== "paid") {
    $("pay-state").textContent = "The payment did not go through. You can try again from My bookings.";
    return;
  }
  const verify = query.get("provider") === "razorpay"
    ? { provider: "razorpay", order_ref: query.get("razorpay_order_id"), payment_id: query.get("razorpay_payment_id"), signature: query.get("razorpay_signature") }
    : { provider: query.get("provider"), order_ref: query.get("payment_intent") || pending.order_ref };
  const verified = await api("/api/v1/payments/verify", { method: "POST", body: verify, auth: true });
  if (!verified.ok) $("pay-state").textContent = `Waiting for the payment to be confirmed… (${errorText(verified)})`;
  const booking = await waitConfirmed(bookingId);
  if (!booking) {
    $("pay-state").textContent = "Payment received; the booking is not confirmed yet. Check My bookings in a minute.";
    return;
  }
  sessionStorage.removeItem(PENDING_PAYMENT);
  $("pay-state").textContent =
    `Booking confirmed: seat ${booking.seat_label}, ${slotText(booking.start, booking.end, booking.timezone)}.`;
  $("pass-link").href = `/app/bookings/${booking.id}/pass`;
  $("pass-link").hidden = false;
  $("pass-link").focus();
};

async function waitConfirmed(bookingId) {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const response = await api(`/api/v1/bookings/${bookingId}`, { auth: true });
    if (response.ok && ["confirmed", "checked_in"].includes(response.data.status)) return response.data;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return null;
}

// ----- my bookings -----

const STATUS_LABELS = {
  pending_payment: "awaiting payment", confirmed: "confirmed", checked_in: "checked in",
  completed: "completed", cancelled: "cancelled", no_show: "no-show",
};

pages.bookings = async () => {
  if (!requireLogin()) return;
  const notes = {};
  const names = {};
  async function libraryName(id) {
    if (!(id in names)) {
      const response = await api(`/api/v1/libraries/${id}`);
      names[id] = response.ok ? response.data.name : "Library";
    }
    return names[id];
  }
  async function load() {
    const response = await api("/api/v1/bookings?limit=50", { auth: true });
    if (!response.ok) {
      $("bookings-status").textContent = errorText(response);
      return;
    }
    const items = response.data.items;
    $("bookings-status").textContent = items.length ? "" : "No bookings yet.";
    for (const booking of items) await libraryName(booking.library_id);
    $("bookings").replaceChildren(...items.map((b) => bookingItem(b, names[b.library_id], notes[b.id], cancel)));
    loadWaitlist(names, libraryName);
  }
  async function cancel(booking) {
    const response = await api(`/api/v1/payments/bookings/${booking.id}/cancel`, {
      method: "POST", body: { reason: "cancelled by the student" }, auth: true,
    });
    if (!response.ok) {
      toast(errorText(response));
      return;
    }
    const payment = response.data;
    notes[booking.id] = !payment ? "Cancelled. Nothing was charged."
      : payment.refunded_minor > 0 ? `Cancelled. Refund: ${money(payment.refunded_minor, payment.currency)}.`
        : "Cancelled. No refund: it was after the cancellation cutoff.";
    toast(notes[booking.id]);
    await load();
  }
  await load();
};

function bookingItem(booking, libraryName, note, cancel) {
  const actions = el("div", { class: "row" });
  if (["confirmed", "checked_in"].includes(booking.status)) {
    actions.append(el("a", { class: "button", href: `/app/bookings/${booking.id}/pass` }, "Show pass"));
  }
  if (booking.status === "pending_payment" && Object.keys(checkouts()).length) {
    const select = el("select", { "aria-label": `Payment provider for seat ${booking.seat_label}` });
    providerSelect(select);
    actions.append(select, el("button", {
      type: "button", onclick: async () => toast(await startPayment(booking, select.value)),
    }, "Pay"));
  }
  if (["pending_payment", "confirmed"].includes(booking.status) && Date.parse(booking.start) > Date.now()) {
    actions.append(cancelControl(booking, cancel));
  }
  return el("li", { class: `item booking ${booking.status}`, dataset: { bookingId: booking.id } },
    el("h3", {}, `${libraryName} · seat ${booking.seat_label}`),
    el("p", {}, slotText(booking.start, booking.end, booking.timezone)),
    el("p", {}, el("span", { class: `status ${booking.status}` }, STATUS_LABELS[booking.status] || booking.status),
      ` · ${money(booking.price_minor, booking.currency)}`),
    note ? el("p", { class: "note" }, note) : null,
    actions.childElementCount ? actions : null);
}

function cancelControl(booking, cancel) {
  const wrap = el("span", { class: "row" });
  const ask = el("button", {
    type: "button", class: "secondary",
    onclick: () => {
      wrap.replaceChildren(
        el("span", {}, "Cancel this booking?"),
        el("button", { type: "button", class: "danger", onclick: () => cancel(booking) }, "Yes, cancel"),
        el("button", { type: "button", class: "secondary", onclick: () => wrap.replaceChildren(ask) }, "Keep it"));
      wrap.querySelector(".danger").focus();
    },
  }, "Cancel booking");
  wrap.append(ask);
  return wrap;
}

async function loadWaitlist(names, libraryName) {
  const response = await api("/api/v1/waitlist", { auth: true });
  const entries = response.ok ? response.data.filter((entry) => entry.status === "waiting") : [];
  for (const entry of entries) await libraryName(entry.library_id);
  if (!entries.length) {
    $("waitlist").replaceChildren(el("li", { class: "muted" }, "You are not waiting for any seat."));
    return;
  }
  $("waitlist").replaceChildren(...entries.map((entry) => el("li", { class: "row" },
    el("span", {}, `${names[entry.library_id]}: day pass on ${dayText(entry.day)}`),
    el("button", {
      type: "button", class: "secondary",
      onclick: async () => {
        const left = await api(`/api/v1/waitlist/${entry.id}`, { method: "DELETE", auth: true });
        toast(left.ok ? "You left the waitlist." : errorText(left));
        loadWaitlist(names, libraryName);
      },
    }, "Leave waitlist"))));
}

// ----- pass -----

pages.pass = async () => {
  if (!requireLogin()) return;
  const id = document.body.dataset.bookingId;
  const [pass, booking, image] = await Promise.all([
    api(`/api/v1/bookings/${id}/pass`, { auth: true }),
    api(`/api/v1/bookings/${id}`, { auth: true }),
    api(`/api/v1/bookings/${id}/pass.png`, { auth: true }, true),
  ]);
  if (!pass.ok || !image.ok || !booking.ok) {
    $("pass-error").textContent = errorText(pass.ok ? image : pass);
    return;
  }
  const b = booking.data;
  $("pass-qr").src = URL.createObjectURL(image.data);
  $("pass-payload").textContent = pass.data.qr_payload;
  $("pass-where").textContent = `Seat ${b.seat_label}, ${slotText(b.start, b.end, b.timezone)}`;
  $("pass-valid").textContent = `Valid ${slotText(pass.data.valid_from, pass.data.valid_until, b.timezone)}`;
  $("fullscreen").addEventListener("click", () => {
    const section = $("pass");
    if (document.fullscreenElement) document.exitFullscreen();
    else if (section.requestFullscreen) section.requestFullscreen().catch(() => section.classList.toggle("full"));
    else section.classList.toggle("full");
  });
};

// ---------- boot ----------

function boot() {
  $("nav-login").hidden = loggedIn();
  $("nav-logout").hidden = !loggedIn();
  $("nav-logout").addEventListener("click", async () => {
    const refresh = sessionStorage.getItem(TOKENS.refresh);
    if (refresh) await rawCall("/api/v1/auth/logout", { method: "POST", body: { refresh_token: refresh } });
    clearTokens();
    location.assign("/app/login");
  });
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
  }
  const run = pages[document.body.dataset.page];
  if (run) run();
}

boot();
