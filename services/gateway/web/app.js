// chinwag's web client: the page. Login, the client of this tab, and the keys.

import { createSession, login, newKey } from "./api.js";
import { Client, STORE, forget, readJson } from "./client.js";
import { NARROW, ui } from "./ui.js";

let client = null;

function showLogin(message = "") {
  client = null;
  ui.chat.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = message;
  ui.loginError.classList.toggle("notice", Boolean(message));
  document.title = "chinwag";
  ui.loginForm.elements.nick.focus();
}

function startClient(auth, fresh) {
  if (fresh) forget();
  sessionStorage.setItem(STORE.auth, JSON.stringify(auth));
  ui.login.hidden = true;
  ui.chat.hidden = false;
  ui.loginError.textContent = "";
  client = new Client(auth, showLogin);
  client.start(fresh);
  ui.input.focus();
  tabs?.postMessage({ type: "who", client: auth.client_id, from: TAB });
}

// "Duplicate tab" copies sessionStorage, token and cursor included. Two tabs
// polling as one client would acknowledge each other's lines, so the copy
// (the tab that asks) steps back and signs in as a client of its own.
const TAB = newKey();
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("chinwag-tabs") : null;
tabs?.addEventListener("message", ({ data }) => {
  if (!client || client.auth.client_id !== data.client) return;
  if (data.type === "who" && data.from !== TAB) {
    tabs.postMessage({ type: "mine", client: data.client, to: data.from });
  } else if (data.type === "mine" && data.to === TAB) {
    const nick = client.me;
    client.end("This tab was a copy of another tab. Sign in to make it a client of its own.");
    ui.loginForm.elements.nick.value = nick;
  }
});

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = ui.loginForm.elements;
  const nick = form.nick.value.trim();
  const password = form.password.value;
  const how = event.submitter?.value ?? "session";
  if (how === "login" && !password) {
    ui.loginError.textContent = "Logging in needs the password the session was registered with.";
    form.password.focus();
    return;
  }
  for (const button of ui.loginForm.querySelectorAll("button")) button.disabled = true;
  try {
    const answer = how === "login" ? await login(nick, password) : await createSession(nick, password);
    form.password.value = "";
    startClient(
      {
        token: answer.token,
        nick: answer.nick,
        session_id: answer.session_id,
        client_id: answer.client_id,
      },
      true,
    );
  } catch (error) {
    ui.loginError.classList.remove("notice");
    ui.loginError.textContent =
      error.code === "ERR_NICKNAMEINUSE"
        ? `${nick} is taken. If it is yours, log in with its password.`
        : error.message;
  } finally {
    for (const button of ui.loginForm.querySelectorAll("button")) button.disabled = false;
  }
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.input.value;
  if (!client || !text.trim()) return;
  ui.input.value = "";
  resizeInput();
  client.submit(text);
});

function resizeInput() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
}

ui.input.addEventListener("input", () => {
  resizeInput();
  client?.typed(ui.input.value);
});

ui.input.addEventListener("keydown", (event) => {
  if (!client || event.isComposing) return;
  if (event.key === "Escape" && client.mode) {
    event.preventDefault();
    if (client.mode.kind === "edit") ui.input.value = "";
    client.setMode(null);
  } else if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    ui.form.requestSubmit();
  } else if (event.key === "Tab" && !event.shiftKey && !event.altKey && !event.ctrlKey) {
    if (client.composer.complete((word, start) => client.candidates(word, start))) {
      event.preventDefault();
    }
  } else if ((event.key === "ArrowUp" || event.key === "ArrowDown") && !event.altKey) {
    if (client.composer.recall(event.key === "ArrowUp" ? 1 : -1)) {
      event.preventDefault();
      resizeInput();
    }
  } else if (event.key === "PageUp" || event.key === "PageDown") {
    event.preventDefault();
    const log = client.active.el;
    log.scrollBy({ top: (event.key === "PageUp" ? -0.9 : 0.9) * log.clientHeight });
    if (event.key === "PageUp") client.fill(client.active);
  }
});

document.addEventListener("keydown", (event) => {
  if (!client || !event.altKey || event.ctrlKey || event.metaKey) return;
  const digit = /^Digit([0-9])$/.exec(event.code);
  if (digit) {
    const keys = [...client.buffers.keys()];
    const index = digit[1] === "0" ? 9 : Number(digit[1]) - 1;
    if (index < keys.length) client.activate(keys[index]);
    event.preventDefault();
  } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
    client.switchBy(event.key === "ArrowUp" ? -1 : 1);
    event.preventDefault();
  }
});

ui.tabs.addEventListener("click", (event) => {
  if (!client) return;
  const close = event.target.closest("[data-close]");
  const tab = event.target.closest(".tab");
  if (close) {
    const buffer = client.buffers.get(close.dataset.close);
    if (buffer) client.local("close", buffer);
  } else if (tab) {
    client.activate(tab.dataset.key);
    if (!NARROW.matches) ui.input.focus();
  }
});

ui.memberList.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-nick]");
  if (!client || !button) return;
  document.body.classList.remove("show-members");
  client.activate(client.dm(button.dataset.nick).key);
});

ui.toggleMembers.addEventListener("click", () => {
  const narrow = NARROW.matches;
  const on = document.body.classList.toggle(narrow ? "show-members" : "hide-members");
  ui.toggleMembers.setAttribute("aria-expanded", String(narrow ? on : !on));
});

ui.logout.addEventListener("click", () => client?.logout());

// The buttons on chat lines: reply, react (☺ opens a palette), edit, delete.
ui.logs.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const line = button?.closest(".line[data-msg]");
  if (!client || !line) return;
  if (button.dataset.action === "pick") {
    line.classList.toggle("picking");
    return;
  }
  line.classList.remove("picking");
  client.lineAction(button.dataset.action, line.dataset.msg, button.dataset.emoji);
});

ui.modeCancel.addEventListener("click", () => {
  if (client?.mode?.kind === "edit") ui.input.value = "";
  client?.setMode(null);
  ui.input.focus();
});

document.addEventListener("visibilitychange", () => {
  if (!client || document.hidden) return;
  client.active.unread = 0;
  client.active.mention = false;
  client.renderChrome();
});

window.addEventListener("online", () => client?.wake?.abort());
// A long-poll open when the network went away may never answer: drop it and retry.
window.addEventListener("offline", () => client?.polling?.abort());
window.addEventListener("pagehide", () => client?.save());

const saved = readJson(STORE.auth);
if (saved?.token && saved?.nick) startClient(saved, false);
else showLogin();
