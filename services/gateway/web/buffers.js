// A buffer is one tab: the server tab, a channel, or a DM. It owns its lines,
// their DOM, its scroll position and what the tab's snapshot keeps of it.

import { fold } from "./irc.js";
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

  /** Add a line at the end; false when a line with its id is already here. */
  append(line, follow = true) {
    if (line.id && this.ids.has(line.id)) return false;
    if (line.id) this.ids.add(line.id);
    const node = lineNode(line);
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
      if (line.id && this.ids.has(line.id)) continue;
      if (line.id) this.ids.add(line.id);
      const node = lineNode(line);
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
    let oldest = null;
    for (const { line } of this.lines) {
      if (line.pos != null && (oldest === null || line.pos < oldest)) oldest = line.pos;
    }
    return oldest;
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
      lines: this.lines.slice(-SNAPSHOT_LINES).map((entry) => entry.line),
    };
  }

  static restore(saved, host) {
    const buffer = new Buffer(saved.kind, saved.name, host);
    buffer.topic = saved.topic ?? "";
    buffer.joined = Boolean(saved.joined);
    buffer.unread = saved.unread ?? 0;
    buffer.mention = Boolean(saved.mention);
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
