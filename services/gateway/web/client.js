// One signed-in client: its tabs, its queue cursor and its long-poll loop.
//
// Each browser tab is one client of a session: its token, the last seq it has
// seen and what its tabs show live in sessionStorage and are written together,
// so a reload shows the same lines and resumes the queue right after them.

import { Api, ApiError, sleep } from "./api.js";
import { Buffer, SERVER, bufferKey } from "./buffers.js";
import { UsageError, commandNames, helpLines, interpret } from "./commands.js";
import { Composer } from "./composer.js";
import { fold, isChannel, same } from "./irc.js";
import { conversation, describe, localLine, nickNode, setMe } from "./render.js";
import { ui } from "./ui.js";
import { renderMembers, renderTabs, renderTopic } from "./view.js";

export const STORE = { auth: "chinwag.auth", seq: "chinwag.seq", view: "chinwag.view" };
const POLL_WAIT = 25; // seconds a long-poll may wait on the server
const MAX_BACKOFF = 30000;
const TYPING_EVERY = 3000; // ms between two TYPING notices of one tab

export function readJson(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

export function forget() {
  for (const key of Object.values(STORE)) sessionStorage.removeItem(key);
}

/** One signed-in client; ``onEnd(message)`` is called when it signs out or is ended. */
export class Client {
  constructor(auth, onEnd) {
    this.auth = auth;
    this.onEnd = onEnd;
    this.api = new Api(auth.token);
    this.seq = Number(sessionStorage.getItem(STORE.seq) ?? 0) || 0;
    this.buffers = new Map();
    this.activeKey = SERVER;
    this.pendingShow = null;
    this.stopper = new AbortController();
    this.wake = null; // cuts a backoff short
    this.polling = null; // aborts the long-poll in flight
    this.refreshes = new Map();
    this.saveTimer = null;
    this.away = false;
    this.composer = new Composer(ui.input);
    this.outgoing = Promise.resolve();
    this.waiting = new Map(); // item id → a reply to show right after that item
    this.mode = null; // {kind: "reply" | "edit", msg, key}: what the next line does
    this.marking = new Map(); // buffer key → timer of a pending MARKREAD
    this.typedAt = new Map(); // buffer key → when TYPING was last sent
  }

  get me() {
    return this.auth.nick;
  }

  get active() {
    return this.buffers.get(this.activeKey);
  }

  /** Signed out or ended: answers still arriving change nothing. */
  get stopped() {
    return this.stopper.signal.aborted;
  }

  // --- lifecycle -------------------------------------------------------------------

  start(fresh) {
    setMe(this.me);
    const view = fresh ? null : readJson(STORE.view);
    if (view?.buffers?.length) {
      for (const saved of view.buffers) this.track(Buffer.restore(saved, ui.logs));
      this.away = Boolean(view.away);
      if (Array.isArray(view.sent)) this.composer.sent = view.sent;
    }
    this.server();
    this.activate(this.buffers.has(view?.active) ? view.active : SERVER);
    if (fresh) this.welcome();
    if (view?.buffers?.length) {
      for (const buffer of this.buffers.values()) {
        if (buffer.kind === "channel" && buffer.joined) this.refreshChannel(buffer);
      }
      this.syncUnread();
    } else {
      this.bootstrap();
    }
    this.save();
    this.poll();
  }

  stop() {
    this.stopper.abort();
    this.polling?.abort();
    this.wake?.abort();
    clearTimeout(this.saveTimer);
    for (const timer of this.refreshes.values()) clearTimeout(timer);
    for (const buffer of this.buffers.values()) buffer.destroy();
    this.buffers.clear();
  }

  /** Back to the login form, with ``message`` on it. */
  end(message) {
    this.stop();
    forget();
    this.onEnd(message);
  }

  async welcome() {
    try {
      const server = await this.api.server();
      if (this.stopped) return;
      const buffer = this.server();
      buffer.rename(server.name);
      buffer.topic = `${server.version} · /help lists the commands`;
      this.note(buffer, "info", `Connected to ${server.name} as ${this.me}.`);
      for (const line of String(server.motd ?? "").split("\n")) {
        if (line.trim()) this.note(buffer, "info", line);
      }
      this.note(buffer, "info", "Type /join #channel to join a channel, /help for every command.");
      this.renderChrome();
    } catch (error) {
      this.failed(error, this.server());
    }
  }

  /** Without a snapshot (a new client of a session): a tab per channel the session is in. */
  async bootstrap() {
    try {
      const state = await this.api.state();
      if (this.stopped) return;
      this.away = Boolean(state.away);
      for (const name of state.channels) this.refreshChannel(this.channel(name));
      this.unreadFrom(state);
      this.fill(this.active);
    } catch (error) {
      this.failed(error, this.server());
    }
  }

  save() {
    clearTimeout(this.saveTimer);
    this.saveTimer = null;
    if (this.stopped) return;
    const view = {
      active: this.activeKey,
      away: this.away,
      sent: this.composer.sent.slice(-50),
      buffers: [...this.buffers.values()].map((buffer) => buffer.snapshot()),
    };
    try {
      sessionStorage.setItem(STORE.view, JSON.stringify(view));
    } catch {
      // Over quota: a reload rebuilds the tabs from the server instead.
      sessionStorage.removeItem(STORE.view);
    }
    sessionStorage.setItem(STORE.auth, JSON.stringify(this.auth));
    sessionStorage.setItem(STORE.seq, String(this.seq));
  }

  scheduleSave() {
    if (!this.saveTimer) this.saveTimer = setTimeout(() => this.save(), 300);
  }

  // --- the long-poll ---------------------------------------------------------------

  async poll() {
    const signal = this.stopper.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        this.polling = new AbortController();
        const page = await this.api.poll(this.seq, POLL_WAIT, this.polling.signal);
        if (signal.aborted) return;
        this.receive(page);
        failures = 0;
        this.setStatus(null);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) {
          this.end("Your session has ended: logged out, quit or expired.");
          return;
        }
        failures += 1;
        const backoff = Math.min(MAX_BACKOFF, 1000 * 2 ** (failures - 1));
        const delay = error.retryAfter ? error.retryAfter * 1000 : backoff * (0.75 + Math.random() / 2);
        const why = navigator.onLine ? error.message : "the browser is offline";
        this.setStatus(`Connection lost: ${why}. Retrying in ${Math.ceil(delay / 1000)} s…`);
        this.wake = new AbortController();
        await sleep(delay, this.wake.signal);
      }
    }
  }

  /** Apply one page of the queue, then save the view and the cursor together. */
  receive(page) {
    for (const item of page.messages) {
      if (item.seq <= this.seq) continue;
      try {
        this.apply(item);
      } catch (error) {
        console.error("chinwag: could not show item", item, error);
      }
      this.seq = item.seq;
    }
    this.seq = Math.max(this.seq, page.last_seq ?? 0);
    for (const notice of page.ephemeral ?? []) this.noticed(notice);
    if (page.messages.length) this.markSoon(this.active);
    this.save();
    this.renderChrome();
  }

  /** One live item: shown in the buffers it concerns, and whatever it changes. */
  apply(item) {
    const mine = same(item.from, this.me);
    switch (item.command) {
      case "PRIVMSG":
      case "NOTICE": {
        const where = conversation(item, this.me);
        const privateNotice = item.command === "NOTICE" && !isChannel(where);
        if (privateNotice && !this.buffers.has(bufferKey("dm", where))) {
          this.deliver(this.server(), item);
        } else {
          this.deliver(isChannel(where) ? this.channel(where) : this.dm(where), item);
        }
        break;
      }
      case "JOIN": {
        const buffer = this.channel(item.to);
        this.deliver(buffer, item);
        if (mine) {
          buffer.joined = true;
          this.refreshChannel(buffer);
          if (this.pendingShow === buffer.key) this.activate(buffer.key);
        } else {
          this.refreshMembers(buffer);
        }
        break;
      }
      case "PART": {
        const buffer = this.buffers.get(bufferKey("channel", item.to));
        if (!buffer) break;
        if (mine) {
          this.note(this.server(), "info", `You left ${buffer.name}.`);
          this.remove(buffer);
        } else {
          this.deliver(buffer, item);
          this.refreshMembers(buffer);
        }
        break;
      }
      case "KICK": {
        const buffer = this.channel(item.to);
        this.deliver(buffer, item);
        if (same(item.params?.[0], this.me)) {
          buffer.joined = false;
          buffer.members = [];
          buffer.hasMore = false;
        } else {
          this.refreshMembers(buffer);
        }
        break;
      }
      case "TOPIC": {
        const buffer = this.channel(item.to);
        buffer.topic = (item.body ?? []).join(" ");
        this.deliver(buffer, item);
        break;
      }
      case "MODE":
        if (isChannel(item.to)) {
          const buffer = this.channel(item.to);
          this.deliver(buffer, item);
          this.refreshMembers(buffer);
        } else {
          this.deliver(this.server(), item);
        }
        break;
      case "NICK":
        this.renamed(item, mine);
        break;
      case "QUIT":
        this.aboutSomeone(item, item.from, this.buffers.get(bufferKey("dm", item.from)));
        break;
      case "INVITE":
        this.deliver(this.server(), item);
        if (this.active.kind !== "server") this.deliver(this.active, item);
        break;
      case "AWAY":
        this.away = (item.body ?? []).some((line) => line.trim());
        this.deliver(this.server(), item);
        break;
      case "REACT":
      case "UNREACT":
      case "EDIT":
      case "DELETE":
      case "PIN":
      case "UNPIN":
        this.changed(item);
        break;
      case "MARKREAD": {
        const buffer = this.buffers.get(bufferKey("dm", item.to));
        const pos = Number(item.params?.[0]);
        if (buffer && Number.isFinite(pos)) buffer.markRead(pos);
        break;
      }
      default:
        this.deliver(this.server(), item);
    }
  }

  renamed(item, mine) {
    const old = item.from;
    const now = item.params?.[0] ?? item.to;
    if (mine || same(now, this.me)) {
      this.auth.nick = now;
      for (const buffer of this.buffers.values()) {
        if (buffer.kind !== "dm") this.deliver(buffer, item);
        if (buffer.kind === "channel") this.refreshMembers(buffer);
      }
      return;
    }
    const dm = this.buffers.get(bufferKey("dm", old));
    if (dm && !this.buffers.has(bufferKey("dm", now))) {
      this.buffers.delete(dm.key);
      dm.rename(now);
      this.buffers.set(dm.key, dm);
      if (this.activeKey === bufferKey("dm", old)) this.activeKey = dm.key;
    }
    this.aboutSomeone(item, old, dm);
  }

  /** A NICK or QUIT of ``nick``: in the channels it is in and in ``dm``, else the server tab. */
  aboutSomeone(item, nick, dm) {
    let shown = false;
    for (const buffer of this.buffers.values()) {
      if (buffer.kind === "channel" && buffer.hasMember(nick)) {
        this.deliver(buffer, item);
        this.refreshMembers(buffer);
        shown = true;
      }
    }
    if (dm) {
      this.deliver(dm, item);
      shown = true;
    }
    if (!shown) this.deliver(this.server(), item);
  }

  /** A change to a chat line (REACT, EDIT, DELETE, PIN …), in the tab that shows it. */
  changed(item) {
    const buffer = this.tabOf(item);
    if (!buffer) return;
    const msg = item.params?.[0];
    switch (item.command) {
      case "REACT":
      case "UNREACT":
        buffer.react(msg, item.params?.[1], item.from, item.command === "REACT");
        break;
      case "EDIT":
        if (item.body?.length) buffer.edit(msg, item.body.map(String), item.ts);
        break;
      case "DELETE":
        buffer.tombstone(msg, item.from, item.ts);
        if (this.mode?.msg === msg) this.setMode(null);
        break;
      default:
        this.deliver(buffer, item);
    }
    this.scheduleSave();
  }

  /** An ephemeral notice (typing): shown under the tab's lines until it expires. */
  noticed(notice) {
    if (notice.type !== "typing") return;
    const buffer = this.tabOf(notice);
    if (!buffer) return;
    const key = fold(notice.from);
    if (notice.state === "active") {
      const wait = Math.max(0, Number(notice.expires_in) || 0) * 1000;
      buffer.typing.set(key, { nick: notice.from, until: Date.now() + wait });
      setTimeout(() => this.renderTyping(), wait + 50);
    } else {
      buffer.typing.delete(key);
    }
    this.renderTyping();
  }

  renderTyping() {
    const buffer = this.active;
    const now = Date.now();
    for (const [key, entry] of buffer?.typing ?? []) if (entry.until <= now) buffer.typing.delete(key);
    const nicks = [...(buffer?.typing.values() ?? [])].map((entry) => entry.nick);
    ui.typing.hidden = !nicks.length;
    ui.typing.textContent = nicks.length === 1 ? `${nicks[0]} is typing…`
      : nicks.length ? `${nicks.slice(0, -1).join(", ")} and ${nicks.at(-1)} are typing…` : "";
  }

  /** Tell the other devices this tab was read up to its newest line (soon, once per burst). */
  markSoon(buffer, delay = 1000) {
    if (!buffer || buffer.kind === "server" || this.marking.has(buffer.key)) return;
    this.marking.set(buffer.key, setTimeout(() => {
      this.marking.delete(buffer.key);
      this.markRead(buffer);
    }, delay));
  }

  markRead(buffer) {
    if (this.stopped || document.hidden || buffer !== this.active) return;
    if (buffer.kind === "channel" && !buffer.joined) return;
    const pos = buffer.latestPos();
    if (pos == null || pos <= (buffer.readPos ?? 0)) return;
    buffer.readPos = pos;
    this.api.send({ command: "MARKREAD", to: buffer.name, params: [String(pos)] }).catch(() => {});
  }

  /** Unread counts and read markers as the server has them (another device may have read). */
  async syncUnread() {
    try {
      const state = await this.api.state();
      if (!this.stopped) this.unreadFrom(state);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.failed(error);
    }
  }

  /** The unread counts and read markers of a ``GET /state`` answer, in the tabs. */
  unreadFrom(state) {
    for (const [name, count] of Object.entries(state.unread ?? {})) {
      const known = this.buffers.get(bufferKey("dm", name));
      const buffer = known ?? (count && !isChannel(name) ? this.dm(name) : null);
      if (!buffer) continue;
      if (state.read?.[name] != null) buffer.readPos = state.read[name];
      if (buffer !== this.active) buffer.unread = count;
    }
    this.markRead(this.active);
    this.renderChrome();
  }

  /** Someone is typing in the active tab: say so, at most every few seconds. */
  typed(text) {
    const buffer = this.active;
    if (!text.trim() || text.startsWith("/") || buffer.kind === "server") return;
    if (buffer.kind === "channel" && !buffer.joined) return;
    const last = this.typedAt.get(buffer.key) ?? 0;
    if (Date.now() - last < TYPING_EVERY) return;
    this.typedAt.set(buffer.key, Date.now());
    this.api.send({ command: "TYPING", to: buffer.name, params: ["active"] }).catch(() => {});
  }

  /** A button on a chat line: reply, react, edit or delete. */
  lineAction(action, msg, emoji) {
    const buffer = this.active;
    const line = buffer.lines.find((entry) => entry.line.id === msg)?.line;
    if (!line || buffer.kind === "server") return;
    const to = buffer.name;
    switch (action) {
      case "react": {
        const mine = (line.reactions ?? []).some((r) => r.emoji === emoji
          && r.nicks.some((nick) => same(nick, this.me)));
        this.send({ command: mine ? "UNREACT" : "REACT", to, params: [msg, emoji] }, buffer);
        break;
      }
      case "reply":
        this.setMode({ kind: "reply", msg, key: buffer.key, nick: line.nick, text: line.text });
        break;
      case "edit": {
        const text = buffer.lines.filter((e) => e.line.msg === msg).map((e) => e.line.text);
        this.setMode({ kind: "edit", msg, key: buffer.key, nick: line.nick, text: line.text });
        ui.input.value = text.join("\n");
        break;
      }
      case "delete":
        this.send({ command: "DELETE", to, params: [msg] }, buffer);
        break;
    }
  }

  setMode(mode) {
    this.mode = mode;
    ui.mode.hidden = !mode;
    ui.modeText.replaceChildren();
    if (mode) {
      ui.modeText.append(mode.kind === "edit" ? "Editing your message" : "Replying to ",
        ...(mode.kind === "edit" ? [] : [nickNode(mode.nick)]), `: ${mode.text.slice(0, 60)}`);
      ui.input.focus();
    }
  }

  /** Show an item's lines in ``buffer``, counting them as unread when it is not in view. */
  deliver(buffer, item) {
    if (item.command === "PRIVMSG" || item.command === "NOTICE") buffer.typing.delete(fold(item.from));
    const unseen = buffer.key !== this.activeKey || document.hidden;
    for (const line of describe(item, this.me)) {
      if (!buffer.append(line) || !unseen || !buffer.countsAsUnread(line)) continue;
      buffer.unread += 1;
      if (line.mention || buffer.kind === "dm") buffer.mention = true;
    }
    const waiting = this.waiting.get(item.id);
    if (waiting) {
      this.waiting.delete(item.id);
      this.deliver(waiting.buffer, waiting.reply);
    }
  }

  /** Show ``reply`` in ``buffer`` right after the item ``id``, which may not be here yet. */
  after(id, buffer, reply) {
    if (buffer.ids.has(id)) {
      this.deliver(buffer, reply);
      return;
    }
    this.waiting.set(id, { buffer, reply });
    setTimeout(() => {
      const waiting = this.waiting.get(id);
      this.waiting.delete(id);
      if (waiting && this.buffers.get(buffer.key) === buffer) this.deliver(buffer, reply);
    }, 5000);
  }

  /** A line made here (help, errors, replies), not a server item. */
  note(buffer, kind, text) {
    buffer.append(localLine(kind, text));
    this.scheduleSave();
  }

  failed(error, origin) {
    if (this.stopped) return;
    if (error instanceof ApiError && error.status === 401) {
      this.end("Your session has ended: logged out, quit or expired.");
      return;
    }
    const text = error.numeric ? `${error.message} (${error.numeric})` : error.message;
    if (origin && origin.key !== SERVER) this.note(origin, "error", text);
    this.note(this.server(), "error", text);
  }

  // --- buffers ---------------------------------------------------------------------

  /** The open tab of the channel or DM an item is about, if there is one. */
  tabOf(item) {
    const where = conversation(item, this.me);
    return this.buffers.get(bufferKey(isChannel(where) ? "channel" : "dm", where));
  }

  track(buffer) {
    this.buffers.set(buffer.key, buffer);
    buffer.el.addEventListener("scroll", () => this.fill(buffer), { passive: true });
    buffer.el.addEventListener("wheel", (event) => {
      if (event.deltaY < 0) this.fill(buffer);
    }, { passive: true });
    buffer.older.addEventListener("click", () => this.loadOlder(buffer));
    return buffer;
  }

  server() {
    return this.buffers.get(SERVER) ?? this.track(new Buffer("server", "server", ui.logs));
  }

  channel(name) {
    return this.buffers.get(bufferKey("channel", name)) ?? this.track(new Buffer("channel", name, ui.logs));
  }

  dm(nick) {
    return this.buffers.get(bufferKey("dm", nick)) ?? this.track(new Buffer("dm", nick, ui.logs));
  }

  remove(buffer) {
    const order = [...this.buffers.keys()];
    const index = order.indexOf(buffer.key);
    this.buffers.delete(buffer.key);
    buffer.destroy();
    if (this.activeKey === buffer.key) {
      const next = order[index - 1] ?? SERVER;
      this.activeKey = SERVER;
      this.activate(this.buffers.has(next) ? next : SERVER);
    }
    this.renderChrome();
    this.scheduleSave();
  }

  activate(key) {
    const buffer = this.buffers.get(key) ?? this.server();
    for (const other of this.buffers.values()) other.el.classList.toggle("active", other === buffer);
    this.activeKey = buffer.key;
    if (this.pendingShow === buffer.key) this.pendingShow = null;
    buffer.unread = 0;
    buffer.mention = false;
    if (buffer.stuck) buffer.scrollToEnd();
    this.composer.reset();
    if (this.mode && this.mode.key !== buffer.key) this.setMode(null);
    this.renderChrome();
    this.renderTyping();
    this.fill(buffer);
    this.markRead(buffer);
    this.scheduleSave();
  }

  /** Load older history while the active buffer is scrolled to its top. */
  fill(buffer) {
    if (buffer.key !== this.activeKey || buffer.kind === "server" || buffer.loading) return;
    if (buffer.hasMore === false || (buffer.kind === "channel" && !buffer.joined)) return;
    if (buffer.atTop()) this.loadOlder(buffer);
  }

  async loadOlder(buffer) {
    if (buffer.loading || buffer.hasMore === false) return;
    buffer.setLoading(true);
    let loaded = false;
    try {
      const page = await this.api.history(buffer.name, buffer.oldestPos() ?? undefined);
      if (this.buffers.get(buffer.key) !== buffer) return;
      buffer.merge(page.messages.flatMap((item) => describe(item, this.me)));
      buffer.hasMore = page.has_more;
      loaded = true;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
        buffer.hasMore = false;
      } else if (error instanceof ApiError && error.status === 401) {
        this.failed(error);
      }
    } finally {
      buffer.setLoading(false);
    }
    this.scheduleSave();
    const unfilled = buffer.el.scrollHeight <= buffer.el.clientHeight + 1;
    if (loaded && buffer.hasMore && (unfilled || buffer.atTop())) this.fill(buffer);
  }

  refreshChannel(buffer) {
    this.refreshMembers(buffer);
    this.api.channel(buffer.name).then((info) => {
      if (this.stopped) return;
      buffer.topic = info.topic ?? "";
      buffer.modes = info.modes;
      if (buffer.key === this.activeKey) this.renderTopic();
    }, () => {});
  }

  /** Re-read a channel's members, at most once per burst of events. */
  refreshMembers(buffer) {
    clearTimeout(this.refreshes.get(buffer.key));
    this.refreshes.set(buffer.key, setTimeout(async () => {
      this.refreshes.delete(buffer.key);
      try {
        buffer.members = (await this.api.members(buffer.name)).members;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 0) return;
        buffer.members = [];
      }
      if (this.stopped) return;
      if (buffer.key === this.activeKey) this.renderMembers();
    }, 100));
  }

  // --- commands --------------------------------------------------------------------

  /** Carry out a line of input; lines go out one at a time, in the order typed. */
  submit(text) {
    const origin = this.active;
    this.composer.remember(text);
    this.outgoing = this.outgoing
      .then(() => this.carryOut(text, origin))
      .catch((error) => this.failed(error, origin));
    return this.outgoing;
  }

  async carryOut(text, origin) {
    let intent;
    try {
      intent = interpret(text, { kind: origin.kind, name: origin.name, me: this.me });
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      this.note(origin, "error", error.message);
      return;
    }
    if (!intent) return;
    const mode = this.mode;
    if (mode && intent.send?.command === "PRIVMSG" && !text.startsWith("/") && mode.key === origin.key) {
      this.setMode(null);
      if (mode.kind === "edit") {
        intent.send = { command: "EDIT", to: origin.name, params: [mode.msg], body: intent.send.body };
      } else {
        intent.send.meta = { reply_to: mode.msg };
      }
    }
    if (intent.local) {
      this.local(intent.local, origin);
    } else if (intent.open) {
      const dm = this.dm(intent.open);
      this.activate(dm.key);
      if (intent.text) await this.send({ command: "PRIVMSG", to: dm.name, body: [intent.text] }, dm);
    } else {
      await this.send(intent.send, origin, intent.show);
    }
  }

  local(what, origin) {
    switch (what) {
      case "help":
        for (const line of helpLines()) this.note(origin, "info", line);
        break;
      case "clear":
        origin.clear();
        this.scheduleSave();
        break;
      case "close":
        if (origin.kind === "channel" && origin.joined) {
          this.send({ command: "PART", to: origin.name, params: [] }, origin);
        } else if (origin.kind !== "server") {
          this.remove(origin);
        }
        break;
      case "logout":
        this.logout();
        break;
    }
  }

  async send(command, origin, show = null) {
    try {
      const answer = await this.api.send(command);
      if (this.stopped) return;
      if (command.command === "QUIT") {
        this.end("You quit: the session has ended on every device.");
        return;
      }
      this.replies(command, answer, origin);
      if (show) {
        const key = bufferKey("channel", show);
        if (this.buffers.has(key)) this.activate(key);
        else this.pendingShow = key;
      }
    } catch (error) {
      this.failed(error, origin);
    }
  }

  /** Numerics answering a command: in the server tab, and where it was typed. */
  replies(command, answer, origin) {
    if (command.command === "JOIN") return; // the channel's tab shows its topic and members
    for (const reply of answer.replies ?? []) {
      if (reply.command === "301" && command.command === "PRIVMSG" && reply.params?.[0]) {
        this.after(answer.id, this.dm(reply.params[0]), reply); // "bob is away", under the line
        continue;
      }
      this.deliver(this.server(), reply);
      if (origin.key !== SERVER) this.deliver(origin, reply);
    }
    this.renderChrome();
    this.scheduleSave();
  }

  async logout() {
    try {
      await this.api.logout();
    } catch {
      // The token is forgotten either way; an unused client expires on the server.
    }
    this.end("Logged out. The session stays signed in on its other devices.");
  }

  // --- rendering -------------------------------------------------------------------

  renderChrome() {
    const buffers = [...this.buffers.values()];
    renderTabs(ui.tabs, buffers, this.activeKey);
    this.renderTopic();
    this.renderMembers();
    ui.me.replaceChildren(nickNode(this.me));
    if (this.away) ui.me.append(" (away)");
    ui.prompt.replaceChildren(nickNode(this.me));
    const unread = buffers.reduce((sum, b) => sum + b.unread, 0);
    document.title = `${unread ? `(${unread}) ` : ""}${this.me} — chinwag`;
  }

  renderTopic() {
    renderTopic(ui, this.active);
  }

  renderMembers() {
    renderMembers(ui, this.active);
    const me = this.active.members.find((m) => same(m.nick, this.me));
    this.active.el.classList.toggle("op", me?.prefix === "@");
  }

  setStatus(text) {
    ui.status.hidden = !text;
    ui.status.textContent = text ?? "";
  }

  // --- keyboard --------------------------------------------------------------------

  /** What Tab may complete: nicks (recent speakers first), channels, commands. */
  candidates(word, lineStart) {
    const prefix = fold(word);
    const matching = (names) => names.filter((name) => fold(name).startsWith(prefix));
    if (word.startsWith("/") && lineStart) return matching(commandNames());
    const buffers = [...this.buffers.values()];
    if (word.startsWith("#")) {
      return matching(buffers.filter((b) => b.kind === "channel").map((b) => b.name));
    }
    const buffer = this.active;
    const recent = [];
    for (let i = buffer.lines.length - 1; i >= 0 && recent.length < 50; i -= 1) {
      const { line } = buffer.lines[i];
      if (line.nick && !line.self && (line.kind === "msg" || line.kind === "action")) {
        recent.push(line.nick);
      }
    }
    const known = buffer.kind === "dm" ? [buffer.name] : buffer.members.map((m) => m.nick);
    const present = new Set(known.map(fold));
    const ordered = [...recent.filter((n) => present.has(fold(n))), ...known.sort(), this.me];
    return matching([...new Map(ordered.map((n) => [fold(n), n])).values()]);
  }

  switchBy(offset) {
    const keys = [...this.buffers.keys()];
    const index = keys.indexOf(this.activeKey);
    this.activate(keys[(index + offset + keys.length) % keys.length]);
  }
}
