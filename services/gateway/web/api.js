// The chinwag HTTP API, version 1, as the web client speaks it.
//
// Paths are relative, so the client also works behind a proxy that serves
// chinwag under a prefix. The token travels in the Authorization header and
// cookies are never sent: each browser tab is its own client.

import { solve } from "./hashcash.js";

const JSON_TYPE = "application/json";
const SEND_ATTEMPTS = 4;

export class ApiError extends Error {
  constructor(status, code, numeric, message, retryAfter = null) {
    super(message);
    this.status = status; // 0: the server could not be reached
    this.code = code;
    this.numeric = numeric;
    this.retryAfter = retryAfter;
  }

  /** Worth retrying unchanged: the network, a 5xx, or a key still in flight. */
  get transient() {
    return this.status === 0 || this.status >= 500 || this.code === "ERR_IDEMPOTENCY_IN_FLIGHT";
  }
}

/** A fresh idempotency key (crypto.randomUUID needs a secure context; this does not). */
export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

async function request(method, path, { token, body, key, signal, timeout } = {}) {
  const headers = { Accept: JSON_TYPE };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = JSON_TYPE;
  if (key) headers["Idempotency-Key"] = key;
  const controller = new AbortController();
  const abort = () => controller.abort();
  signal?.addEventListener("abort", abort, { once: true });
  const timer = timeout ? setTimeout(abort, timeout) : null;
  try {
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: "omit",
      cache: "no-store",
    });
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const error = data?.error ?? {};
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(
      response.status,
      error.code ?? "ERR_HTTP",
      error.numeric ?? null,
      error.message ?? `HTTP ${response.status}`,
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
  } catch (error) {
    if (error instanceof ApiError || signal?.aborted) throw error;
    throw new ApiError(0, "ERR_NETWORK", null, "The server cannot be reached");
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  return search.toString();
}

const channelPath = (name) => `api/v1/channels/${encodeURIComponent(name.replace(/^#/, ""))}`;

/**
 * Anonymous (or newly registered) session: POST /session. When the server asks for
 * proof of work, solve its challenge (GET /challenge) and ask again with the stamp.
 */
export async function createSession(nick, password) {
  const body = password ? { nick, password } : { nick };
  try {
    return await request("POST", "api/v1/session", { body, timeout: 15000 });
  } catch (error) {
    if (!(error instanceof ApiError) || error.code !== "ERR_PROOF_OF_WORK") throw error;
  }
  const challenge = await request("GET", "api/v1/challenge", { timeout: 15000 });
  const stamp = await solve(challenge.challenge, challenge.bits);
  return request("POST", "api/v1/session", { body: { ...body, stamp }, timeout: 15000 });
}

/** A new client of a session registered with a password: POST /login. */
export function login(nick, password) {
  return request("POST", "api/v1/login", { body: { nick, password }, timeout: 15000 });
}

/** One client's view of the API: every call carries its token. */
export class Api {
  constructor(token) {
    this.token = token;
  }

  get(path, options = {}) {
    return request("GET", path, { token: this.token, timeout: 15000, ...options });
  }

  state() {
    return this.get("api/v1/state");
  }

  server() {
    return this.get("api/v1/server");
  }

  channel(name) {
    return this.get(channelPath(name));
  }

  members(name) {
    return this.get(`${channelPath(name)}/members`);
  }

  history(target, before, limit = 50) {
    return this.get(`api/v1/history?${query({ target, before, limit })}`);
  }

  /** The long-poll: items with seq > after, waiting up to ``wait`` seconds for one. */
  poll(after, wait, signal) {
    const path = `api/v1/messages?${query({ after, timeout: wait, limit: 200 })}`;
    return this.get(path, { signal, timeout: (wait + 15) * 1000 });
  }

  logout() {
    return request("POST", "api/v1/logout", { token: this.token, timeout: 10000 });
  }

  /** POST one command; a retry after a network error or 5xx reuses its idempotency key. */
  async send(command) {
    const key = newKey();
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await request("POST", "api/v1/messages", {
          token: this.token,
          body: command,
          key,
          timeout: 20000,
        });
      } catch (error) {
        if (!(error instanceof ApiError) || !error.transient || attempt >= SEND_ATTEMPTS) {
          throw error;
        }
        await sleep(500 * 2 ** (attempt - 1));
      }
    }
  }
}
