// From items to lines, and from lines to DOM nodes.
//
// Message text only ever reaches the page through text nodes: no HTML from the
// network is parsed, and links are built as elements from checked URLs.

import { ctcp, isChannel, mentions, nickHue, numericText, plain, same } from "./irc.js";

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'"*]+$/;

/**
 * A line of a buffer, as stored in the tab's snapshot:
 * ``{id, pos, ts, kind, nick, text, self, mention}`` where kind is one of
 * msg, action, notice, event, info, error. The lines of a chat item also
 * carry ``msg`` (the item's id); its first line carries what happened to it:
 * ``replyTo`` (and ``quote``), ``reactions``, ``edited``, ``deleted``.
 */
export function localLine(kind, text, nick = null) {
  return { id: null, pos: null, ts: new Date().toISOString(), kind, nick, text };
}

const body = (item) =>
  Array.isArray(item.body) ? item.body.map(String) : [JSON.stringify(item.body)];

const reason = (item) => {
  const text = body(item).join(" ").trim();
  return text ? ` (${plain(text)})` : "";
};

/** Whether an item's ``pos`` numbers the history of this buffer's target. */
function historical(item) {
  return ["PRIVMSG", "NOTICE", "JOIN", "PART", "KICK", "TOPIC", "MODE"].includes(item.command);
}

/** The lines one item shows in a buffer (several for a multi-line message). */
export function describe(item, me) {
  const own = same(item.from, me);
  const base = {
    pos: historical(item) ? item.pos ?? null : null,
    ts: item.ts,
    nick: item.from,
    self: own,
  };
  const one = (kind, text, extra = {}) => [{ ...base, id: item.id, kind, text, ...extra }];
  switch (item.command) {
    case "PRIVMSG":
    case "NOTICE": {
      const about = {
        msg: item.id,
        replyTo: typeof item.meta?.reply_to === "string" ? item.meta.reply_to : null,
        reactions: item.reactions ?? [],
        edited: item.edited ?? null,
        deleted: item.deleted ?? null,
      };
      const kind = item.command === "NOTICE" ? "notice" : "msg";
      if (about.deleted || !body(item).length) {
        return [{ ...base, ...about, id: item.id, kind, text: "", deleted: about.deleted ?? {} }];
      }
      return body(item).map((raw, index) => {
        const line = { ...base, id: index ? `${item.id}/${index}` : item.id, msg: item.id };
        if (!index) Object.assign(line, about);
        const special = ctcp(raw);
        if (special?.command === "ACTION") {
          line.kind = "action";
          line.text = plain(special.text);
        } else if (special) {
          line.kind = "info";
          line.text = `CTCP ${special.command} from ${item.from} ${plain(special.text)}`.trim();
        } else {
          line.kind = item.command === "NOTICE" ? "notice" : "msg";
          line.text = plain(raw);
        }
        line.mention = !own && line.kind !== "info" && mentions(line.text, me);
        return line;
      });
    }
    case "PIN":
    case "UNPIN":
      return one("event", `${item.command === "PIN" ? "pinned" : "unpinned"} a message`);
    case "PUBKEY":
      return one("info", `${item.from} announced a signing key`, { nick: null });
    case "JOIN":
      return one("event", `has joined ${item.to}`);
    case "PART":
      return one("event", `has left ${item.to}${reason(item)}`);
    case "KICK":
      return one("event", `was kicked from ${item.to} by ${item.from}${reason(item)}`, {
        nick: item.params?.[0] ?? "",
        self: same(item.params?.[0], me),
      });
    case "TOPIC": {
      const topic = plain(body(item).join(" "));
      return one("event", topic ? `changed the topic to: ${topic}` : "cleared the topic");
    }
    case "MODE":
      return one("event", `sets mode ${(item.params ?? []).join(" ")} on ${item.to}`);
    case "NICK":
      return one("event", `is now known as ${item.params?.[0] ?? item.to}`);
    case "QUIT":
      return one("event", `has quit${reason(item)}`);
    case "INVITE": {
      const [who, channel] = item.params ?? [];
      const hint = same(who, me) ? ` — /join ${channel} to accept` : "";
      return one("event", `invites ${who} to ${channel}${hint}`);
    }
    case "AWAY": {
      const text = plain(body(item).join(" "));
      return one("info", text ? `You are marked as away: ${text}` : "You are back", {
        nick: null,
      });
    }
    default:
      return one("info", plain(numericText(item)), { nick: null });
  }
}

/** Whether a line counts towards a tab's unread number. */
export const isChat = (line) => ["msg", "action", "notice"].includes(line.kind);

/** Which buffer a PRIVMSG or NOTICE belongs to: a channel, or the other party of a DM. */
export function conversation(item, me) {
  if (isChannel(item.to)) return item.to;
  return same(item.from, me) ? item.to : item.from;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

export function clock(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Append ``text`` to ``parent`` as text nodes, with http(s) URLs as safe links. */
export function appendText(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let candidate = match[0].replace(TRAILING, "");
    while (candidate.endsWith(")") && count(candidate, "(") < count(candidate, ")")) {
      candidate = candidate.slice(0, -1).replace(TRAILING, "");
    }
    const url = safeUrl(candidate);
    if (!url) continue;
    parent.append(document.createTextNode(text.slice(last, match.index)));
    const link = document.createElement("a");
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.textContent = candidate;
    parent.append(link);
    last = match.index + candidate.length;
  }
  parent.append(document.createTextNode(text.slice(last)));
}

function count(text, char) {
  return text.split(char).length - 1;
}

function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** An element showing ``nick`` in its colour. */
export function nickNode(nick, tag = "span") {
  const node = document.createElement(tag);
  node.className = "nick";
  node.textContent = nick;
  node.style.setProperty("--hue", String(nickHue(nick)));
  return node;
}

/** The DOM node of one line. */
export function lineNode(line) {
  const node = document.createElement("div");
  node.className = `line ${line.kind}`;
  if (line.self) node.classList.add("self");
  if (line.mention) node.classList.add("mention");
  const time = document.createElement("time");
  time.textContent = clock(line.ts);
  time.dateTime = line.ts;
  time.title = new Date(line.ts).toLocaleString();
  const who = document.createElement("span");
  who.className = "who";
  const text = document.createElement("span");
  text.className = "text";
  switch (line.kind) {
    case "msg":
      who.append(nickNode(line.nick));
      break;
    case "notice":
      who.append("-", nickNode(line.nick), "-");
      break;
    case "action":
      who.textContent = "*";
      text.append(nickNode(line.nick), " ");
      break;
    case "event":
      who.textContent = "—";
      if (line.nick) text.append(nickNode(line.nick), " ");
      break;
    case "error":
      who.textContent = "!";
      break;
    default:
      who.textContent = "·";
  }
  appendText(text, line.text);
  node.append(time, who, text);
  decorate(node, text, line);
  return node;
}

let me = null;

/** Whose reactions show as one's own. */
export function setMe(nick) {
  me = nick;
}

export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function actionButton(action, label, title, emoji = null) {
  const button = element("button", `act ${action}`, label);
  button.type = "button";
  button.dataset.action = action;
  button.title = title;
  if (emoji) button.dataset.emoji = emoji;
  return button;
}

/** A chat line's reply quote, edited mark, tombstone, reactions and actions. */
function decorate(node, text, line) {
  if (!line.msg) return;
  if (line.deleted) {
    text.replaceChildren(element("span", "tombstone", "message deleted"));
  } else if (line.edited) {
    const mark = element("span", "edited", "(edited)");
    mark.title = `edited ${new Date(line.edited).toLocaleString()}`;
    text.append(" ", mark);
  }
  if (line.id !== line.msg) return;
  node.dataset.msg = line.msg;
  if (line.replyTo) {
    const quote = element("span", "quote", "↪ ");
    if (line.quote) quote.append(nickNode(line.quote.nick), `: ${line.quote.text}`);
    else quote.append("a reply to an earlier message");
    text.prepend(quote);
  }
  if (line.reactions?.length) {
    const row = element("span", "reactions");
    for (const reaction of line.reactions) {
      const chip = actionButton("react", `${reaction.emoji} ${reaction.count}`,
        reaction.nicks.join(", "), reaction.emoji);
      chip.classList.add("reaction");
      if (reaction.nicks.some((nick) => same(nick, me))) chip.classList.add("mine");
      row.append(chip);
    }
    text.append(row);
  }
  if (line.deleted) return;
  const actions = element("span", "actions");
  const palette = element("span", "palette");
  for (const emoji of QUICK_REACTIONS) palette.append(actionButton("react", emoji, `React ${emoji}`, emoji));
  actions.append(
    actionButton("reply", "↩", "Reply"),
    actionButton("pick", "☺", "React"),
    palette,
  );
  if (line.self) actions.append(actionButton("edit", "✎", "Edit"));
  const remove = actionButton("delete", "🗑", "Delete");
  if (!line.self) remove.classList.add("others"); // shown to channel operators only
  actions.append(remove);
  node.append(actions);
}
