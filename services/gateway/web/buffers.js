// A buffer is one tab: the server tab, a channel, or a DM. It owns its lines,
// their DOM, its scroll position and what the tab's snapshot keeps of it.

import { fold, same } from "./irc.js";
import { isChat, lineNode } from "./render.js";

const SNAPSHOT_LINES = 400;
const NEAR = 48; // pixels from an edge that count as being at it

export const SERVER = "*";

export function bufferKey(kind, name) {
  return kind === "server" ? SERVER : fold(name);
}

export class Buffer {
  constructor(kind, name, host) {
    this.kind = kind;
    this.name = name;
    this.topic = "";
    this.members = [];
    this.joined = kind === "channel";
    this.unread = 0;
    this.mention = false;
    this.hasMore = kind === "server" ? false : null; // null: not asked yet
    this.loading = false;
    this.stuck = true; // scrolled to the bottom: new lines keep it there
    this.lines = [];
    this.ids = new Set();
    this.readPos = null; // the session's read marker here, as last heard
    this.typing = new Map(); // folded nick → {nick, until}

    this.el = document.createElement("div");
    this.el.className = `buffer ${kind}`;
    this.el.dataset.key = this.key;
    this.el.setAttribute("role", "log");
    this.el.setAttribute("aria-label", name);
    this.el.tabIndex = 0;
    this.older = document.createElement("button");
    this.older.type = "button";
    this.older.className = "older";
    this.older.textContent = "Load older messages";
    this.older.hidden = kind === "server";
    this.list = document.createElement("div");
    this.list.className = "lines";
    this.el.append(this.older, this.list);
    this.el.addEventListener("scroll", () => {
      this.stuck = this.atBottom();
    }, { passive: true });
    host.append(this.el);
  }

  get key() {
    return bufferKey(this.kind, this.name);
  }

  rename(name) {
    this.name = name;
    this.el.dataset.key = this.key;
    this.el.setAttribute("aria-label", name);
  }

  atBottom() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < NEAR;
  }

  atTop() {
    return this.el.scrollTop < NEAR;
  }

  scrollToEnd() {
    this.el.scrollTop = this.el.scrollHeight;
  }

  /** The node of a line not shown yet (its id now taken), or null when it is here already. */
  admit(line) {
    if (line.id && this.ids.has(line.id)) return null;
    if (line.id) this.ids.add(line.id);
    this.quote(line);
    return lineNode(line);
  }

  /** Add a line at the end; false when a line with its id is already here. */
  append(line, follow = true) {
    const node = this.admit(line);
    if (!node) return false;
    this.lines.push({ line, node });
    this.list.append(node);
    if (follow && this.stuck) this.scrollToEnd();
    return true;
  }

  /** Merge lines from history where their ``pos`` puts them, keeping the view still. */
  merge(lines) {
    const fromBottom = this.el.scrollHeight - this.el.scrollTop;
    let added = 0;
    for (const line of lines) {
      const node = this.admit(line);
      if (!node) continue;
      const at = this.lines.findIndex((entry) => entry.line.pos != null && entry.line.pos > line.pos);
      if (at < 0) {
        this.lines.push({ line, node });
        this.list.append(node);
      } else {
        this.lines.splice(at, 0, { line, node });
        this.list.insertBefore(node, this.lines[at + 1].node);
      }
      added += 1;
    }
    if (this.stuck) this.scrollToEnd();
    else this.el.scrollTop = this.el.scrollHeight - fromBottom;
    return added;
  }

  /** The oldest history position shown, where the next older page ends. */
  oldestPos() {
    return this.edgePos(Math.min);
  }

  /** The newest history position shown (the read marker moves up to it). */
  latestPos() {
    return this.edgePos(Math.max);
  }

  edgePos(pick) {
    let edge = null;
    for (const { line } of this.lines) {
      if (line.pos != null) edge = edge === null ? line.pos : pick(edge, line.pos);
    }
    return edge;
  }

  /** A reply shows the start of the line it answers, when that line is here. */
  quote(line) {
    if (!line.replyTo || line.quote) return;
    const parent = this.lines.find((entry) => entry.line.id === line.replyTo)?.line;
    if (parent && !parent.deleted) line.quote = { nick: parent.nick, text: parent.text.slice(0, 80) };
  }

  /** Re-draw the lines of chat item ``msg`` after ``change(firstLine)``; false when absent. */
  change(msg, change) {
    const entries = this.lines.filter((entry) => entry.line.msg === msg);
    if (!entries.length) return false;
    const replaced = change(entries[0].line, entries.map((entry) => entry.line));
    const lines = replaced ?? entries.map((entry) => entry.line);
    const at = this.lines.indexOf(entries[0]);
    const fresh = lines.map((line) => ({ line, node: lineNode(line) }));
    entries[0].node.before(...fresh.map((entry) => entry.node));
    for (const entry of entries) {
      entry.node.remove();
      if (entry.line.id) this.ids.delete(entry.line.id);
    }
    for (const entry of fresh) if (entry.line.id) this.ids.add(entry.line.id);
    this.lines.splice(at, entries.length, ...fresh);
    return true;
  }

  react(msg, emoji, nick, added) {
    return this.change(msg, (first) => {
      const reactions = (first.reactions ?? []).map((r) => ({ ...r, nicks: [...r.nicks] }));
      let found = reactions.find((r) => r.emoji === emoji);
      if (added && !found) reactions.push((found = { emoji, count: 0, nicks: [] }));
      if (!found) return;
      found.nicks = found.nicks.filter((n) => !same(n, nick));
      if (added) found.nicks.push(nick);
      found.count = found.nicks.length;
      first.reactions = reactions.filter((r) => r.count > 0);
    });
  }

  edit(msg, body, ts) {
    return this.change(msg, (first) => {
      if (first.deleted) return;
      return body.map((text, index) => ({
        ...first,
        id: index ? `${msg}/${index}` : msg,
        text,
        edited: ts,
        mention: false,
        ...(index ? { replyTo: null, reactions: [] } : {}),
      }));
    });
  }

  tombstone(msg, by, ts) {
    return this.change(msg, (first) => [
      { ...first, id: msg, text: "", deleted: { by, ts }, reactions: [], edited: null },
    ]);
  }

  /** The session read up to ``pos`` (here or on another device): recount what is unread. */
  markRead(pos) {
    this.readPos = Math.max(this.readPos ?? 0, pos);
    this.unread = this.lines.filter(({ line }) =>
      this.countsAsUnread(line) && !line.deleted && line.pos != null && line.pos > this.readPos
      && line.id === line.msg).length;
    if (!this.unread) this.mention = false;
  }

  clear() {
    this.lines = [];
    this.ids.clear();
    this.list.replaceChildren();
  }

  hasMember(nick) {
    const folded = fold(nick);
    return this.members.some((m) => fold(m.nick) === folded);
  }

  countsAsUnread(line) {
    return isChat(line) && !line.self;
  }

  setLoading(loading) {
    this.loading = loading;
    this.older.disabled = loading;
    this.older.textContent = loading ? "Loading…" : "Load older messages";
    this.older.hidden = this.kind === "server" || this.hasMore === false;
  }

  snapshot() {
    return {
      kind: this.kind,
      name: this.name,
      topic: this.topic,
      joined: this.joined,
      unread: this.unread,
      mention: this.mention,
      hasMore: this.hasMore,
      readPos: this.readPos,
      lines: this.lines.slice(-SNAPSHOT_LINES).map((entry) => entry.line),
    };
  }

  static restore(saved, host) {
    const buffer = new Buffer(saved.kind, saved.name, host);
    buffer.topic = saved.topic ?? "";
    buffer.joined = Boolean(saved.joined);
    buffer.unread = saved.unread ?? 0;
    buffer.mention = Boolean(saved.mention);
    buffer.readPos = saved.readPos ?? null;
    const trimmed = (saved.lines?.length ?? 0) >= SNAPSHOT_LINES;
    buffer.hasMore = saved.kind === "server" ? false : trimmed ? null : saved.hasMore ?? null;
    for (const line of saved.lines ?? []) buffer.append(line, false);
    buffer.setLoading(false);
    return buffer;
  }

  destroy() {
    this.el.remove();
  }
}
