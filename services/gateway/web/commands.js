// Slash commands: what the user types, turned into an intent the app carries out.
//
// An intent is one of
//   {send: {command, to, params, body}, show?: key}  POST it (then switch to ``show``)
//   {open: nick, text?}                               open a DM tab (and say ``text``)
//   {local: "help" | "clear" | "close" | "logout"}     handled in the browser

import { action, isChannel } from "./irc.js";

export class UsageError extends Error {}

/** ``context``: {kind, name} of the current tab. */
function channelOf(context, args, usage) {
  if (isChannel(args[0])) return args.shift();
  if (context.kind === "channel") return context.name;
  throw new UsageError(`Usage: ${usage} (or use it in a channel tab)`);
}

function need(args, count, usage) {
  if (args.length < count) throw new UsageError(`Usage: ${usage}`);
}

const rest = (words) => words.join(" ");

const send = (command, fields = {}, show = null) => ({
  send: { command, params: [], ...fields },
  show,
});

/** /msg and /notice: a line to a named channel or nick. */
function toTarget(command, args, usage) {
  need(args, 2, usage);
  return send(command, { to: args[0], body: [rest(args.slice(1))] });
}

export const COMMANDS = {
  join: {
    usage: "/join #channel [key]",
    help: "join a channel (creating it when it does not exist)",
    run(args) {
      need(args, 1, this.usage);
      const channel = args[0].startsWith("#") ? args[0] : `#${args[0]}`;
      return send("JOIN", { to: channel, params: args.slice(1, 2) }, channel);
    },
  },
  part: {
    usage: "/part [#channel] [reason]",
    help: "leave a channel",
    run(args, context) {
      const channel = channelOf(context, args, this.usage);
      return send("PART", { to: channel, body: args.length ? [rest(args)] : undefined });
    },
  },
  msg: {
    usage: "/msg nick|#channel text",
    help: "send a message without switching tabs",
    run(args) {
      return toTarget("PRIVMSG", args, this.usage);
    },
  },
  query: {
    usage: "/query nick [text]",
    help: "open a private conversation",
    run(args) {
      need(args, 1, this.usage);
      if (isChannel(args[0])) throw new UsageError("Use /join for channels");
      return { open: args[0], text: rest(args.slice(1)) };
    },
  },
  me: {
    usage: "/me action",
    help: "describe what you are doing (* nick waves)",
    run(args, context) {
      need(args, 1, this.usage);
      if (context.kind === "server") throw new UsageError("/me needs a channel or DM tab");
      return send("PRIVMSG", { to: context.name, body: [action(rest(args))] });
    },
  },
  notice: {
    usage: "/notice nick|#channel text",
    help: "send a notice",
    run(args) {
      return toTarget("NOTICE", args, this.usage);
    },
  },
  nick: {
    usage: "/nick newnick",
    help: "change your nick",
    run(args) {
      need(args, 1, this.usage);
      return send("NICK", { params: [args[0]] });
    },
  },
  topic: {
    usage: "/topic [#channel] [text]",
    help: "show or set the topic (an empty text is /topic -clear)",
    run(args, context) {
      const channel = channelOf(context, args, this.usage);
      if (args.length === 1 && args[0] === "-clear") return send("TOPIC", { to: channel, body: [""] });
      return send("TOPIC", { to: channel, body: args.length ? [rest(args)] : undefined });
    },
  },
  mode: {
    usage: "/mode [#channel|nick] [+o nick | +m | +k key …]",
    help: "show or change channel modes (or your own)",
    run(args, context) {
      let target;
      if (args.length && !/^[+-]/.test(args[0])) target = args.shift();
      else if (context.kind === "channel") target = context.name;
      else target = context.me;
      return send("MODE", { to: target, params: args });
    },
  },
  kick: {
    usage: "/kick [#channel] nick [reason]",
    help: "remove someone from a channel (operators)",
    run(args, context) {
      const channel = channelOf(context, args, this.usage);
      need(args, 1, this.usage);
      const body = args.length > 1 ? [rest(args.slice(1))] : undefined;
      return send("KICK", { to: channel, params: [args[0]], body });
    },
  },
  invite: {
    usage: "/invite nick [#channel]",
    help: "invite someone to a channel",
    run(args, context) {
      need(args, 1, this.usage);
      const channel = args[1] ?? (context.kind === "channel" ? context.name : null);
      if (!channel) throw new UsageError(`Usage: ${this.usage}`);
      return send("INVITE", { params: [args[0], channel] });
    },
  },
  away: {
    usage: "/away [message]",
    help: "mark yourself away; without a message, back",
    run(args) {
      return send("AWAY", { body: args.length ? [rest(args)] : undefined });
    },
  },
  whois: {
    usage: "/whois nick",
    help: "who someone is, where they are, how long idle",
    run(args, context) {
      const nick = args[0] ?? (context.kind === "dm" ? context.name : null);
      if (!nick) throw new UsageError(`Usage: ${this.usage}`);
      return send("WHOIS", { params: [nick] });
    },
  },
  who: {
    usage: "/who [#channel|mask]",
    help: "list users of a channel or matching a mask",
    run(args, context) {
      const target = args[0] ?? (context.kind === "channel" ? context.name : "*");
      return isChannel(target) ? send("WHO", { to: target }) : send("WHO", { params: [target] });
    },
  },
  names: {
    usage: "/names [#channel]",
    help: "list a channel's members",
    run(args, context) {
      return send("NAMES", { to: channelOf(context, args, this.usage) });
    },
  },
  list: {
    usage: "/list [mask]",
    help: "list channels",
    run(args) {
      return send("LIST", { params: args.slice(0, 1) });
    },
  },
  motd: { usage: "/motd", help: "the message of the day", run: () => send("MOTD") },
  lusers: { usage: "/lusers", help: "how many users and channels", run: () => send("LUSERS") },
  close: {
    usage: "/close",
    help: "close this tab (leaves a channel)",
    run: () => ({ local: "close" }),
  },
  clear: { usage: "/clear", help: "clear this tab's lines", run: () => ({ local: "clear" }) },
  quit: {
    usage: "/quit [reason]",
    help: "end your session on every device and free your nick",
    run(args) {
      return send("QUIT", { body: args.length ? [rest(args)] : undefined });
    },
  },
  logout: {
    usage: "/logout",
    help: "sign this tab out; the session and its other devices stay",
    run: () => ({ local: "logout" }),
  },
  help: { usage: "/help", help: "this list", run: () => ({ local: "help" }) },
};

const ALIASES = { j: "join", leave: "part", m: "msg", q: "query", t: "topic", exit: "quit" };

export const commandNames = () => Object.keys(COMMANDS).map((name) => `/${name}`);

/**
 * What a line of input means in ``context`` ({kind, name, me}): plain text is a
 * message to the current tab, ``//text`` sends ``/text`` as it is.
 */
export function interpret(input, context) {
  const text = input.replace(/\s+$/, "");
  if (!text.trim()) return null;
  if (!text.startsWith("/") || text.startsWith("//")) {
    const message = text.startsWith("//") ? text.slice(1) : text;
    if (context.kind === "server") {
      throw new UsageError("This is the server tab: /join #channel or /query nick first");
    }
    return send("PRIVMSG", { to: context.name, body: message.split("\n") });
  }
  const [head, ...args] = text.slice(1).trim().split(/\s+/);
  const name = ALIASES[head.toLowerCase()] ?? head.toLowerCase();
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`Unknown command /${head}; /help lists them`);
  return command.run(args, context);
}

export function helpLines() {
  return [
    "Commands:",
    ...Object.values(COMMANDS).map((c) => `${c.usage} — ${c.help}`),
    "Keys: Enter sends, Shift+Enter starts a new line, Up/Down recall what you sent, " +
      "Tab completes nicks, Alt+1…9 switch tabs, PageUp loads older lines.",
  ];
}
