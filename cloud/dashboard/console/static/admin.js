// The platform admin's dashboard: tenants, fleet health, revenue across tenants, audit search.

import { getJson, requestJson, requireRole } from "./api.js";
import { bars } from "./charts.js";
import { badge, h, loadPanel, money, number, say, setPanel, showPanelError, stat, table, when, wireSignOut } from "./dom.js";

const state = { tenants: [], armed: null };
const tenantName = (id) => (id ? (state.tenants.find((tenant) => tenant.id === id) || { name: id.slice(0, 8) }).name : "platform");

function renderOverview(body, data) {
  body.append(
    h("div", { class: "stats" }, stat("tenants", String(data.tenants)), stat("libraries", String(data.libraries)), stat("edges", String(data.edges)), stat("edges online", String(data.edges_online))),
  );
  body.append(h("h3", { text: "Net revenue by tenant" }));
  const rows = data.revenue_by_tenant.map((row) => ({ label: row.tenant_name, value: row.net_minor, text: money(row.net_minor, row.currency) }));
  body.append(rows.length ? bars(rows, "Net revenue by tenant") : h("p", { class: "na", text: "No revenue yet." }));
}

async function changeTenant(tenant, action) {
  if (state.armed !== `${tenant.id}:${action}`) {
    state.armed = `${tenant.id}:${action}`;  // first press arms, the second (now "Confirm …") acts
    renderTenants(document.querySelector("#panel-tenants .body"), state.tenants);
    document.getElementById(`tenant-action-${tenant.id}`).focus();
    return;
  }
  state.armed = null;
  try {
    await requestJson(`/api/v1/admin/tenants/${tenant.id}/${action}`, { method: "POST" });
    say(`${tenant.name} ${action === "suspend" ? "suspended" : "reactivated"}.`);
  } catch (error) {
    say(`Could not ${action} ${tenant.name}: ${error.message}`, "error");
  }
  await loadTenants();
}

function tenantButton(tenant) {
  const action = tenant.status === "suspended" ? "reactivate" : "suspend";
  const armed = state.armed === `${tenant.id}:${action}`;
  const verb = action === "suspend" ? "Suspend" : "Reactivate";
  return h("button", {
    type: "button",
    id: `tenant-action-${tenant.id}`,
    class: armed ? "small danger" : "small",
    text: armed ? `Confirm ${action}` : verb,
    "aria-label": `${armed ? `Confirm ${action} of` : verb} ${tenant.name}`,
    onclick: () => changeTenant(tenant, action),
  });
}

function renderTenants(body, tenants) {
  body.replaceChildren(
    table(
      "Tenants",
      ["Name", "Slug", "Plan", "Status", "Since", ""],
      tenants.map((tenant) => [tenant.name, tenant.slug, tenant.subscription_plan, badge(tenant.status, tenant.status === "active" ? "ok" : "bad"), tenant.created_at.slice(0, 10), tenantButton(tenant)]),
    ),
  );
}

async function loadTenants() {
  try {
    state.tenants = await getJson("/api/v1/admin/tenants");
  } catch (error) {
    showPanelError("panel-tenants", error);
    return;
  }
  setPanel("panel-tenants", "ready");
  renderTenants(document.querySelector("#panel-tenants .body"), state.tenants);
  const select = document.getElementById("audit-tenant");
  const chosen = select.value;
  select.replaceChildren(h("option", { value: "", text: "All tenants" }), ...state.tenants.map((tenant) => h("option", { value: tenant.id, text: tenant.name })));
  select.value = chosen;
}

function renderFleet(body, edges) {
  if (!edges.length) {
    body.append(h("p", { class: "na", text: "No edges enrolled yet." }));
    return;
  }
  const online = edges.filter((edge) => edge.online).length;
  body.append(h("p", { class: "total", text: `${online} of ${edges.length} edges online` }));
  body.append(
    table(
      "Every edge device",
      ["Edge", "Tenant", "State", "Last seen", "Version", "Queue", "Dead letters", "Clock skew"],
      edges.map((edge) => [
        edge.name,
        tenantName(edge.tenant_id),
        edge.revoked ? badge("revoked", "bad") : edge.online ? badge("online", "ok") : badge("offline", "warn"),
        when(edge.last_seen_at),
        edge.agent_version || "—",
        edge.queue_depth === null ? "—" : String(edge.queue_depth),
        edge.dead_letters === null ? "—" : String(edge.dead_letters),
        edge.clock_skew_s === null ? "—" : h("span", {}, `${number(edge.clock_skew_s, 1)} s `, edge.skew_flagged ? badge("skewed", "bad") : ""),
      ]),
    ),
  );
}

function renderAudit(body, entries) {
  if (!entries.length) {
    body.append(h("p", { class: "na", text: "No audit entries match." }));
    return;
  }
  body.append(
    table(
      `${entries.length} audit entries, newest first`,
      ["When", "Tenant", "Actor", "Action", "Target", "IP", "Detail"],
      entries.map((entry) => [
        when(entry.occurred_at),
        tenantName(entry.tenant_id),
        entry.actor_email || (entry.actor_id ? entry.actor_id.slice(0, 8) : "—"),
        h("code", { text: entry.action }),
        entry.target,
        entry.ip,
        Object.keys(entry.detail || {}).length ? h("code", { class: "detail", text: JSON.stringify(entry.detail) }) : "",
      ]),
    ),
  );
}

function searchAudit(event) {
  if (event) event.preventDefault();
  const since = document.getElementById("audit-since").value;
  const params = {
    q: document.getElementById("audit-q").value.trim(),
    tenant_id: document.getElementById("audit-tenant").value,
    action: document.getElementById("audit-action").value.trim(),
    since: since ? new Date(`${since}T00:00:00`).toISOString() : "",
    limit: 200,
  };
  return loadPanel("panel-audit", () => getJson("/api/v1/admin/audit", params), renderAudit);
}

async function start() {
  if (!requireRole(["super_admin"])) return;
  wireSignOut();
  document.getElementById("audit-form").addEventListener("submit", searchAudit);
  await loadTenants();
  await Promise.all([loadPanel("panel-overview", () => getJson("/api/v1/admin/analytics/overview"), renderOverview), loadPanel("panel-fleet", () => getJson("/api/v1/admin/fleet"), renderFleet)]);
  document.body.dataset.loaded = "admin";
}

start();
