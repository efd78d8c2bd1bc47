// The page's fixed elements, found once.

const $ = (id) => document.getElementById(id);
export const ui = {
  login: $("login"),
  loginForm: $("login-form"),
  loginError: $("login-error"),
  chat: $("chat"),
  tabs: $("tabs"),
  logs: $("logs"),
  title: $("title"),
  topic: $("topic"),
  memberList: $("member-list"),
  memberCount: $("member-count"),
  toggleMembers: $("toggle-members"),
  status: $("status"),
  me: $("me"),
  prompt: $("prompt"),
  form: $("send-form"),
  input: $("input"),
  logout: $("logout"),
  typing: $("typing"),
  mode: $("mode"),
  modeText: $("mode-text"),
  modeCancel: $("mode-cancel"),
};

/** Phone-sized: tabs in a row, the member list a drawer. */
export const NARROW = window.matchMedia("(max-width: 720px)");
