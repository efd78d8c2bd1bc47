"""The web client in a real browser: Debian's Chromium, driven by Playwright.

Every test runs the four services in-process (the ``system`` fixture) and opens
the client the gateway serves at ``/``. Each browser context is one browser
profile; each page in it is a tab, and so a client of its own. Screenshots of
the main views land in ``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright, expect

from tests.harness import ApiClient, System, until

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1100, "height": 640}
PHONE = {"width": 390, "height": 740}
WAIT_MS = 10_000

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt when missing (never skipped under CI)."""
    if not CHROMIUM.exists():
        problem = _install_chromium()
        if problem or not CHROMIUM.exists():
            reason = f"Chromium is not installed and installing it failed: {problem}"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return CHROMIUM


def _install_chromium() -> str | None:
    """``apt-get install chromium``; the error, or None when it worked."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        try:
            subprocess.run([*sudo, *command], check=True, env=env, capture_output=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as error:
            output = getattr(error, "stderr", b"") or b""
            return f"{' '.join(command)}: {error} {output.decode(errors='replace')[-500:]}"
    return None


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


Users = Callable[[str], Awaitable[ApiClient]]


@pytest.fixture
async def users(system: System) -> AsyncIterator[Users]:
    """Makes users who speak the HTTP API directly, closed after the test."""
    made: list[ApiClient] = []

    async def make(nick: str) -> ApiClient:
        made.append(await ApiClient.create(system.base_url, nick))
        return made[-1]

    yield make
    for user in made:
        await user.close()


@dataclass
class Tab:
    """One browser tab running the web client, and what went wrong in it."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, context: BrowserContext, base_url: str) -> Tab:
        page = await context.new_page()
        tab = cls(page)

        async def on_dialog(dialog: Dialog) -> None:
            tab.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: tab.errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                tab.errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        await page.goto(base_url)
        return tab

    async def connect(self, nick: str, password: str | None = None, how: str = "session") -> None:
        await self.page.fill("#login-form [name=nick]", nick)
        await self.page.fill("#login-form [name=password]", password or "")
        await self.page.click(f"#login-form button[value={how}]")
        await expect(self.page.locator("#chat")).to_be_visible()
        await expect(self.page.locator("#prompt")).to_have_text(nick)

    async def type(self, text: str) -> None:
        await self.page.fill("#input", text)
        await self.page.press("#input", "Enter")

    async def join(self, channel: str) -> None:
        await self.type(f"/join {channel}")
        await expect(self.page.locator("#title")).to_have_text(channel)
        await expect(self.lines("event").last).to_contain_text(f"has joined {channel}")

    async def show(self, name: str) -> None:
        await self.page.locator(".tab", has_text=name).first.click()
        await expect(self.page.locator("#title")).to_have_text(name)

    def lines(self, kind: str = "msg") -> Any:
        return self.page.locator(f".buffer.active .line.{kind} .text")

    def tab(self, name: str) -> Any:
        return self.page.locator(".tab .label", has_text=name).locator("..")

    async def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"))

    def healthy(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors


async def new_tab(browser: Browser, system: System, **options: Any) -> Tab:
    context = await browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)
    return await Tab.open(context, system.base_url)


async def test_two_users_chat_dm_topic_and_nick(browser: Browser, system: System) -> None:
    alice = await new_tab(browser, system, color_scheme="dark")
    bob = await new_tab(browser, system)
    await bob.screenshot("login")
    await alice.connect("alice")
    await bob.connect("bob", "hunter22")
    await expect(alice.lines("info").first).to_contain_text("Connected to")

    await alice.join("#room")
    await bob.join("#room")
    await expect(alice.lines("event").last).to_have_text("bob has joined #room")
    await expect(alice.page.locator("#member-list li")).to_have_text(["@alice", "bob"])

    said = ["hi bob", "hello alice", "how is the release going?", "shipping today"]
    for index, line in enumerate(said):
        await (alice if index % 2 == 0 else bob).type(line)
        await expect(alice.lines()).to_have_count(index + 1)
    # Three lines typed at once still go out, and arrive everywhere, in order.
    burst = ["one", "two", "three https://example.com/notes?id=7"]
    for line in burst:
        await bob.type(line)
    for tab in (alice, bob):
        await expect(tab.lines()).to_have_text(said + burst)
        await expect(tab.page.locator(".buffer.active .line.msg .nick")).to_have_text(
            ["alice", "bob", "alice", "bob", "bob", "bob", "bob"]
        )
    link = alice.page.locator(".buffer.active .line a")
    await expect(link).to_have_attribute("href", "https://example.com/notes?id=7")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")

    await bob.type("/me waves")
    await expect(alice.lines("action")).to_have_text(["bob waves"])
    await alice.type("/topic Release planning")
    for tab in (alice, bob):
        await expect(tab.page.locator("#topic")).to_have_text("Release planning")
        await expect(tab.lines("event").last).to_have_text(
            "alice changed the topic to: Release planning"
        )

    # A DM opens a tab with an unread count on the other side.
    await bob.type("/msg alice psst, a secret")
    await expect(alice.tab("bob").locator(".badge")).to_have_text("1")
    await expect(alice.tab("bob")).to_have_class("tab dm mention")
    await alice.screenshot("channel")
    await alice.page.keyboard.press("Alt+3")
    await expect(alice.page.locator("#title")).to_have_text("bob")
    await expect(alice.tab("bob").locator(".badge")).to_have_count(0)
    await alice.type("the secret is safe")
    await bob.show("alice")
    for tab in (alice, bob):
        await expect(tab.lines()).to_have_text(["psst, a secret", "the secret is safe"])
    await bob.screenshot("dm")

    await bob.show("#room")
    await bob.type("/nick bobby")
    await expect(bob.page.locator("#prompt")).to_have_text("bobby")
    await alice.show("#room")
    await expect(alice.lines("event").last).to_have_text("bob is now known as bobby")
    await expect(alice.page.locator("#member-list li")).to_have_text(["@alice", "bobby"])
    await expect(alice.tab("bobby")).to_have_count(1)
    await bob.type("still me")
    await expect(alice.page.locator(".buffer.active .line.msg .nick").last).to_have_text("bobby")

    # Tab completes the nick, Enter sends, Up recalls what was sent.
    await alice.page.fill("#input", "bo")
    await alice.page.press("#input", "Tab")
    await expect(alice.page.locator("#input")).to_have_value("bobby: ")
    await alice.page.type("#input", "well done")
    await alice.page.press("#input", "Enter")
    await expect(bob.lines().last).to_have_text("bobby: well done")
    await expect(bob.page.locator(".buffer.active .line.msg").last).to_have_class(
        "line msg mention"
    )
    await alice.page.press("#input", "ArrowUp")
    await expect(alice.page.locator("#input")).to_have_value("bobby: well done")
    await alice.page.fill("#input", "")

    expected = [*said, *burst, "still me", "bobby: well done"]
    for tab in (alice, bob):
        await expect(tab.lines()).to_have_text(expected)

    # Numerics land in the server tab.
    await alice.type("/whois bobby")
    await alice.page.keyboard.press("Alt+1")
    await expect(alice.lines("info").filter(has_text="bobby is on #room")).to_have_count(1)
    await alice.screenshot("server")

    # On a phone the member list folds away behind a button.
    carol = await new_tab(browser, system, viewport=PHONE, is_mobile=True, has_touch=True)
    await carol.connect("carol")
    await carol.join("#room")
    await expect(carol.page.locator("#members")).not_to_be_in_viewport()
    await carol.type("hello from my phone")
    await alice.show("#room")
    await expect(alice.lines().last).to_have_text("hello from my phone")
    await carol.screenshot("phone")
    await carol.page.click("#toggle-members")
    await expect(carol.page.locator("#member-list li")).to_have_text(["@alice", "bobby", "carol"])
    await expect(carol.page.locator("#members")).to_be_in_viewport()
    await carol.screenshot("phone-members")

    for tab in (alice, bob, carol):
        tab.healthy()


async def test_reload_and_network_drop_resume_without_gaps_or_repeats(
    browser: Browser, system: System, users: Users
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    alice = await Tab.open(context, system.base_url)
    await alice.connect("alice", "opensesame")
    await alice.join("#room")
    bob = await users("bob")
    await bob.join("#room")
    sent: list[str] = []

    async def say(text: str) -> None:
        await bob.say("#room", text)
        sent.append(text)

    for n in range(3):
        await say(f"before reload {n}")
    await expect(alice.lines()).to_have_text(sent)
    await alice.type("/query bob")
    await alice.show("#room")

    await say("while reloading")
    await alice.page.reload()
    await expect(alice.page.locator("#title")).to_have_text("#room")
    await say("after reload")
    await expect(alice.lines()).to_have_text(sent)
    await expect(alice.tab("bob")).to_have_count(1)
    await expect(alice.lines("event")).to_have_text(
        ["alice has joined #room", "bob has joined #room"]
    )

    await alice.page.reload()
    await expect(alice.lines()).to_have_text(sent)

    # The network drops: the client says so, backs off, and catches up when it returns.
    await context.set_offline(True)
    await expect(alice.page.locator("#status")).to_contain_text(
        "Connection lost: the browser is offline"
    )
    await say("while offline 1")
    await say("while offline 2")
    await context.set_offline(False)
    await expect(alice.page.locator("#status")).to_be_hidden()
    await expect(alice.lines()).to_have_text(sent)
    await say("back online")
    await expect(alice.lines()).to_have_text(sent)

    # A copy of the tab (window.open copies sessionStorage, as "Duplicate tab" does)
    # steps back instead of polling as the same client.
    async with context.expect_page() as opened:
        await alice.page.evaluate("window.open(location.href)")
    copy = await opened.value
    await expect(copy.locator("#login-error")).to_contain_text("copy of another tab")
    await copy.close()

    # Another tab of the same browser is another client: it logs into the session,
    # finds its channels, and receives on its own.
    second = await Tab.open(context, system.base_url)
    await expect(second.page.locator("#login")).to_be_visible()
    await second.connect("alice", "opensesame", how="login")
    await second.show("#room")
    await expect(second.lines()).to_have_text(sent)
    await say("to both tabs")
    for tab in (alice, second):
        await expect(tab.lines()).to_have_text(sent)
    first_seq = await alice.page.evaluate("sessionStorage.getItem('chinwag.seq')")
    second_seq = await second.page.evaluate("sessionStorage.getItem('chinwag.seq')")
    assert int(first_seq) > int(second_seq) > 0

    alice.healthy()
    second.healthy()


async def test_markup_in_messages_is_shown_as_text(
    browser: Browser, system: System, users: Users
) -> None:
    alice = await new_tab(browser, system)
    await alice.connect("alice")
    await alice.join("#room")
    mallory = await users("mallory")
    await mallory.join("#room")
    await alice.type("/mode +o mallory")
    await expect(alice.page.locator("#member-list li")).to_have_text(["@alice", "@mallory"])

    script = "<script>alert(1)</script>"
    image = "<img src=x onerror=alert(1)>"
    await mallory.say("#room", script)
    await mallory.say("#room", image)
    await mallory.say("#room", "\x01ACTION <b>bows</b> <img src=y onerror=alert(2)>\x01")
    await mallory.ok("TOPIC", to="#room", body=['<img src=z onerror="alert(3)"> topic'])
    await mallory.say(
        "#room", "javascript:alert(4) <a href=javascript:alert(5)>x</a> https://ok.example/"
    )
    await mallory.say("alice", "<svg onload=alert(6)></svg>")

    await expect(alice.page.get_by_text(script, exact=True)).to_be_visible()
    await expect(alice.page.get_by_text(image, exact=True)).to_be_visible()
    await expect(alice.lines("action")).to_have_text(
        ["mallory <b>bows</b> <img src=y onerror=alert(2)>"]
    )
    await expect(alice.page.locator("#topic")).to_have_text('<img src=z onerror="alert(3)"> topic')
    await expect(alice.lines().last).to_contain_text("<a href=javascript:alert(5)>x</a>")
    await expect(alice.tab("mallory").locator(".badge")).to_have_text("1")
    await alice.show("mallory")
    await expect(alice.lines()).to_have_text(["<svg onload=alert(6)></svg>"])
    await alice.show("#room")
    await alice.screenshot("markup")

    page = alice.page
    assert await page.locator("img, svg, iframe, object, embed").count() == 0
    assert await page.locator("#chat b").count() == 0
    assert await page.locator("script").count() == 1  # the client's own module
    links = page.locator("#logs a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://ok.example/")
    assert await page.evaluate("[...document.querySelectorAll('[onerror],[onload]')].length") == 0
    alice.healthy()


async def test_scrolling_up_pages_through_history(
    browser: Browser, system: System, users: Users
) -> None:
    bob = await users("bob")
    await bob.join("#history")
    older = [f"line {n:03}" for n in range(130)]
    for line in older:
        await bob.say("#history", line)
    alice = await new_tab(browser, system)
    await alice.connect("alice")
    await alice.join("#history")
    await bob.say("#history", "newest")

    # The tab opens on the latest page; each scroll to the top brings an older one.
    lines = alice.lines()
    await expect(lines.last).to_have_text("newest")
    await expect(lines).to_have_count(51)
    buffer = alice.page.locator(".buffer.active")
    for shown in (101, 131):
        await buffer.evaluate("el => { el.scrollTop = 0; }")
        await expect(lines).to_have_count(shown)
    await expect(alice.page.locator(".buffer.active .older")).to_be_hidden()
    await expect(lines).to_have_text([*older, "newest"])
    await expect(alice.lines("event")).to_have_text(
        ["bob has joined #history", "alice has joined #history"]
    )
    await alice.screenshot("history")
    alice.healthy()


async def test_reactions_replies_edits_deletes_typing_and_unread_across_devices(
    browser: Browser, system: System, users: Users
) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    laptop = await Tab.open(context, system.base_url)
    await laptop.connect("alice", "opensesame")
    await laptop.join("#room")
    bob = await users("bob")
    await bob.join("#room")
    hello = await bob.say("#room", "hello alice")
    await expect(laptop.lines()).to_have_text(["hello alice"])
    line = laptop.page.locator(f'.line[data-msg="{hello["id"]}"]')

    # A reaction from the palette, then bob's: one chip, counted, alice's marked hers.
    await line.hover()
    await line.locator("button.pick").click()
    await line.locator('.palette button[data-emoji="🎉"]').click()
    chip = line.locator(".reaction")
    await expect(chip).to_have_text("🎉 1")
    await expect(chip).to_have_class(re.compile(r"\bmine\b"))
    await bob.ok("REACT", to="#room", params=[hello["id"], "🎉"])
    await expect(chip).to_have_text("🎉 2")
    await expect(chip).to_have_attribute("title", "alice, bob")
    got = await bob.receive_until(lambda i: i["command"] == "REACT" and i["from"] == "alice")
    assert next(i["params"] for i in got if i["command"] == "REACT") == [hello["id"], "🎉"]

    # A reply quotes what it answers.
    await line.hover()
    await line.locator("button.reply").click()
    await expect(laptop.page.locator("#mode")).to_contain_text("Replying to bob: hello alice")
    await laptop.type("hi bob")
    await expect(laptop.page.locator("#mode")).to_be_hidden()
    reply = (await bob.receive_until(lambda i: i["body"] == ["hi bob"]))[-1]
    assert reply["meta"] == {"reply_to": hello["id"]}
    mine = laptop.page.locator(f'.line[data-msg="{reply["id"]}"]')
    await expect(mine.locator(".quote")).to_have_text("↪ bob: hello alice")

    # Editing one's own line; bob's edit shows too, marked.
    await mine.hover()
    await mine.locator("button.edit").click()
    await expect(laptop.page.locator("#input")).to_have_value("hi bob")
    await laptop.type("hi bob, welcome")
    await expect(mine.locator(".text")).to_contain_text("hi bob, welcome (edited)")
    edit = (await bob.receive_until(lambda i: i["command"] == "EDIT"))[-1]
    assert (edit["params"], edit["body"]) == ([reply["id"]], ["hi bob, welcome"])
    await bob.ok("EDIT", to="#room", params=[hello["id"]], body=["hello, alice"])
    await expect(line.locator(".text")).to_contain_text("hello, alice (edited)")

    # alice created #room, so she may delete bob's line: a tombstone stays.
    await expect(line.locator("button.delete")).to_have_count(1)
    await line.hover()
    await line.locator("button.delete").click()
    await expect(line.locator(".tombstone")).to_have_text("message deleted")
    await expect(line.locator(".reaction")).to_have_count(0)
    await expect(mine.locator(".quote")).to_have_text("↪ bob: hello alice")  # as it was seen

    # Typing shows under the lines until the line arrives (or the notice expires).
    await bob.ok("TYPING", to="#room")
    await expect(laptop.page.locator("#typing")).to_have_text("bob is typing…")
    last = await bob.say("#room", "done typing")
    await expect(laptop.page.locator("#typing")).to_be_hidden()
    await laptop.screenshot("features")

    # The laptop has read #room up to bob's last line: the marker says so.
    token = await laptop.page.evaluate("JSON.parse(sessionStorage.getItem('chinwag.auth')).token")
    me = ApiClient(system.base_url, token, "alice", "", "")
    last_pos = (await bob.receive_until(lambda i: i["id"] == last["id"]))[-1]["pos"]

    async def marked() -> bool:
        state = (await me.http.get("/api/v1/state")).json()
        return bool(state["read"].get("#room") == last_pos)

    await until(marked, 10, "the laptop's read marker")
    await laptop.page.keyboard.press("Alt+1")

    # A second device: lines arriving count as unread on both; reading them on the phone
    # clears the laptop's count.
    phone = await Tab.open(context, system.base_url)
    await phone.connect("alice", "opensesame", how="login")
    await expect(phone.tab("#room")).to_have_count(1)
    await bob.say("#room", "news 1")
    await bob.say("#room", "news 2")
    for tab in (laptop, phone):
        await expect(tab.tab("#room").locator(".badge")).to_have_text("2")
    assert (await me.http.get("/api/v1/state")).json()["unread"]["#room"] == 2
    await phone.show("#room")
    await expect(phone.lines().last).to_have_text("news 2")
    await expect(laptop.tab("#room").locator(".badge")).to_have_count(0)
    assert (await me.http.get("/api/v1/state")).json()["unread"]["#room"] == 0
    await me.close()
    laptop.healthy()
    phone.healthy()


async def test_the_web_client_pays_the_proof_of_work(browser: Browser, system: System) -> None:
    url = await system.start_gateway("gateway-pow", session_pow_bits=14)
    context = await browser.new_context(viewport=DESKTOP)
    tab = await Tab.open(context, url)
    samples = ["", "abc", "a" * 56, "a" * 64, "héllo", "x" * 200]
    digests = await tab.page.evaluate(
        """async (samples) => {
            const { sha256Hex } = await import("/web/hashcash.js");
            return samples.map(sha256Hex);
        }""",
        samples,
    )
    assert digests == [hashlib.sha256(s.encode()).hexdigest() for s in samples]
    await tab.connect("alice", "pw-alice-1")
    await tab.join("#paid")
    tab.healthy()
    await context.close()
