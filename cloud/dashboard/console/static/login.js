import { currentSession, homeFor, saveSession } from "./api.js";
import { say } from "./dom.js";

const REASONS = {
  expired: "Your session has expired. Please sign in again.",
  "wrong-role": "That page is not for your account. Sign in with another account.",
};

async function login(event) {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button");
  button.disabled = true;
  say("Signing in…");
  try {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: form.email.value.trim(), password: form.password.value }),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = response.status === 401 ? "Wrong email or password." : (body && body.error && body.error.message) || `HTTP ${response.status}`;
      say(message, "error");
      return;
    }
    const home = homeFor(body.role);
    if (!home) {
      say("This dashboard is for library owners, their staff and platform admins.", "error");
      return;
    }
    saveSession(body);
    window.location.assign(home);
  } catch (error) {
    say(`Could not reach the server: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function start() {
  const reason = new URLSearchParams(window.location.search).get("reason");
  if (reason && REASONS[reason]) say(REASONS[reason], "error");
  const session = currentSession();
  if (session && homeFor(session.role) && !reason) {
    window.location.assign(homeFor(session.role));
    return;
  }
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("email").focus();
}

start();
