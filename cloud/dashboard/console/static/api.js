// The dashboard's API client: the token pair lives in sessionStorage (gone when the tab closes);
// a 401 triggers ONE refresh shared by every request in flight (refresh tokens rotate, and
// presenting a spent one revokes the whole family), then the request is retried once.

const KEY = "studyspot.console.session";
const LOGIN_PAGE = "/dashboard";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details;
  }
}

export function currentSession() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function saveSession(pair) {
  sessionStorage.setItem(
    KEY,
    JSON.stringify({
      access: pair.access_token,
      refresh: pair.refresh_token,
      role: pair.role,
      tenantId: pair.tenant_id,
    }),
  );
}

export function signOut(reason) {
  const session = currentSession();
  sessionStorage.removeItem(KEY);
  if (session && session.refresh) {
    fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
      keepalive: true,
    }).catch(() => {});
  }
  const query = reason ? `?reason=${encodeURIComponent(reason)}` : "";
  window.location.assign(LOGIN_PAGE + query);
}

/** The session if its role may see this page; otherwise that role's own page, or the login page. */
export function requireRole(roles) {
  const session = currentSession();
  if (session && roles.includes(session.role)) return session;
  const home = session && homeFor(session.role);
  if (home) window.location.replace(home);
  else signOut(session ? "wrong-role" : "");
  return null;
}

export function homeFor(role) {
  if (role === "super_admin") return "/dashboard/admin";
  if (role === "library_owner" || role === "library_staff") return "/dashboard/owner";
  return null;
}

let refreshing = null;

async function refreshTokens() {
  const session = currentSession();
  if (!session || !session.refresh) return false;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: session.refresh }),
  });
  if (!response.ok) return false;
  saveSession(await response.json());
  return true;
}

export async function apiFetch(path, options = {}, retry = true) {
  const session = currentSession();
  const headers = new Headers(options.headers || {});
  if (session) headers.set("Authorization", `Bearer ${session.access}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status !== 401 || !retry) return response;
  if (!refreshing) refreshing = refreshTokens().finally(() => (refreshing = null));
  if (await refreshing) return apiFetch(path, options, false);
  signOut("expired");
  throw new ApiError(401, { error: { message: "your session has expired" } });
}

async function bodyOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

export async function requestJson(path, options = {}) {
  const init = { ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers = { ...(init.headers || {}), "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  const response = await apiFetch(path, init);
  const body = await bodyOf(response);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export function getJson(path, params) {
  return requestJson(withQuery(path, params));
}

export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
