// The chrome around the lines: tabs, topic bar and member list, rebuilt from
// the buffers whenever they change.

import { appendText, nickNode } from "./render.js";

function tabNode(buffer, index, active) {
  const tab = document.createElement("button");
  tab.type = "button";
  tab.className = `tab ${buffer.kind}`;
  tab.dataset.key = buffer.key;
  tab.setAttribute("role", "tab");
  tab.setAttribute("aria-selected", String(active));
  if (index < 9) tab.title = `Alt+${index + 1}`;
  tab.classList.toggle("active", active);
  tab.classList.toggle("mention", buffer.mention);
  tab.classList.toggle("parted", buffer.kind === "channel" && !buffer.joined);
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = buffer.name;
  tab.append(label);
  if (buffer.unread) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = buffer.unread > 999 ? "999+" : String(buffer.unread);
    badge.setAttribute("aria-label", `${buffer.unread} unread`);
    tab.append(badge);
  }
  if (buffer.kind !== "server") {
    const close = document.createElement("span");
    close.className = "close";
    close.dataset.close = buffer.key;
    close.textContent = "×";
    close.setAttribute("aria-hidden", "true");
    close.title = buffer.kind === "channel" ? `Leave ${buffer.name}` : "Close";
    tab.append(close);
  }
  return tab;
}

export function renderTabs(container, buffers, activeKey) {
  container.replaceChildren(
    ...buffers.map((buffer, index) => tabNode(buffer, index, buffer.key === activeKey)),
  );
  container.querySelector(".tab.active")?.scrollIntoView({ block: "nearest", inline: "nearest" });
}

export function renderTopic(ui, buffer) {
  ui.title.textContent = buffer.name;
  ui.topic.replaceChildren();
  if (buffer.kind === "channel" && !buffer.joined) {
    ui.topic.textContent = "You are not in this channel.";
  } else if (buffer.kind === "dm") {
    ui.topic.textContent = `Private conversation with ${buffer.name}`;
  } else {
    appendText(ui.topic, buffer.topic || (buffer.kind === "channel" ? "No topic" : ""));
  }
  ui.topic.title = ui.topic.textContent;
  ui.chat.classList.toggle("no-members", buffer.kind !== "channel");
}

export function renderMembers(ui, buffer) {
  const members = buffer.kind === "channel" ? buffer.members : [];
  ui.memberCount.textContent = members.length ? String(members.length) : "";
  ui.memberList.replaceChildren(...members.map((member) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.nick = member.nick;
    button.title = `Message ${member.nick}`;
    const mode = document.createElement("span");
    mode.className = "prefix";
    mode.textContent = member.prefix;
    button.append(mode, nickNode(member.nick));
    item.append(button);
    return item;
  }));
}
