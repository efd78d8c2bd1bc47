// IRC conventions the client needs: case folding, CTCP, formatting codes, numerics.

const FOLD = { "[": "{", "]": "}", "\\": "|", "~": "^" };

/** CASEMAPPING=rfc1459, as the server compares nicks and channel names. */
export function fold(name) {
  return String(name).toLowerCase().replace(/[[\]\\~]/g, (c) => FOLD[c]);
}

export const same = (a, b) => a != null && b != null && fold(a) === fold(b);

export const isChannel = (name) => typeof name === "string" && name.startsWith("#");

/** ``{command, text}`` of a CTCP line (``\x01ACTION waves\x01``), or null. */
export function ctcp(line) {
  if (!line.startsWith("\x01")) return null;
  const inner = line.slice(1, line.endsWith("\x01") && line.length > 1 ? -1 : undefined);
  const space = inner.indexOf(" ");
  const command = (space < 0 ? inner : inner.slice(0, space)).toUpperCase();
  return { command, text: space < 0 ? "" : inner.slice(space + 1) };
}

export const action = (text) => `\x01ACTION ${text}\x01`;

// Bold, colour (with its digits), hex colour, italics, monospace, reverse,
// strikethrough, underline, reset: shown as plain text.
const FORMATTING = /\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;

export function plain(text) {
  return String(text).replace(FORMATTING, "");
}

// Hues far enough apart to tell nicks apart at a glance.
const HUES = [0, 20, 38, 60, 95, 135, 160, 180, 200, 220, 245, 270, 290, 310, 330, 350];

/** A stable hue for a nick, the same in every tab and for every user. */
export function nickHue(nick) {
  let hash = 0x811c9dc5;
  for (const char of fold(nick)) {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return HUES[hash % HUES.length];
}

/** Whether ``text`` mentions ``nick`` as a word. */
export function mentions(text, nick) {
  if (!nick) return false;
  const haystack = fold(text);
  const needle = fold(nick);
  let at = haystack.indexOf(needle);
  while (at >= 0) {
    const before = at === 0 ? "" : haystack[at - 1];
    const after = haystack[at + needle.length] ?? "";
    if (!/[\w{}|^`\-]/.test(before) && !/[\w{}|^`\-]/.test(after)) return true;
    at = haystack.indexOf(needle, at + 1);
  }
  return false;
}

function when(seconds) {
  const date = new Date(Number(seconds) * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toLocaleString();
}

function duration(seconds) {
  let left = Number(seconds);
  if (!Number.isFinite(left)) return String(seconds);
  const parts = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
  }
  parts.push(`${left}s`);
  return parts.join(" ");
}

/** A numeric reply (or PONG) as one readable line. */
export function numericText(item) {
  const p = item.params ?? [];
  const text = Array.isArray(item.body) ? item.body.join(" ") : "";
  switch (item.command) {
    case "301": return `${p[0]} is away: ${text}`;
    case "311": return `${p[0]} (${p[1]}@${p[2]}): ${text}`;
    case "312": return `${p[0]} is connected to ${p[1]} (${text})`;
    case "313": return `${p[0]} ${text}`;
    case "317": return `${p[0]} has been idle ${duration(p[1])}, signed on ${when(p[2])}`;
    case "318": return `End of WHOIS for ${p[0]}`;
    case "319": return `${p[0]} is on ${text}`;
    case "320": return `${p[0]} ${text}`;
    case "321": return "Channels (users, topic):";
    case "322": return `${p[0]} (${p[1]}) ${text}`.trimEnd();
    case "323": return "End of channel list";
    case "324": return `Modes of ${p[0]}: ${p.slice(1).join(" ")}`;
    case "329": return `${p[0]} was created ${when(p[1])}`;
    case "331": return `No topic is set on ${p[0]}`;
    case "332": return `Topic of ${p[0]}: ${text}`;
    case "333": return `Topic of ${p[0]} set by ${p[1]} on ${when(p[2])}`;
    case "341": return `Invited ${p[0]} to ${p[1]}`;
    case "352": return `${p[0]} ${p[4]} ${p[5]}`;
    case "315": return `End of WHO for ${p[0]}`;
    case "353": return `Users on ${p[1]}: ${text}`;
    case "366": return `End of names of ${p[0]}`;
    case "367": return `Ban on ${p[0]}: ${p[1]} (set by ${p[2]} on ${when(p[3])})`;
    case "368": return `End of ban list of ${p[0]}`;
    case "221": return `Your user modes: ${p[0]}`;
    case "252":
    case "254": return `${p[0]} ${text}`;
    case "PONG": return `PONG from ${p[0]}: ${p[1] ?? ""}`;
    default: return [...p, text].filter(Boolean).join(" ");
  }
}
