"""``chinwag chat``'s options and entry point. textual is imported only when the UI starts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from libs.irc import valid_nick
from services.chat.state import default_path

DEFAULT_SERVER = "http://127.0.0.1:8080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``chinwag chat``."""
    parser.add_argument(
        "--server",
        default=os.environ.get("CHINWAG_SERVER", DEFAULT_SERVER),
        help=f"the chinwag server's URL (default: CHINWAG_SERVER or {DEFAULT_SERVER})",
    )
    parser.add_argument("--nick", required=True, help="your nick")
    parser.add_argument(
        "--password",
        default=os.environ.get("CHINWAG_PASSWORD"),
        help="log into (or register) a session with a password (default: CHINWAG_PASSWORD); "
        "without one the session is anonymous",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="where the token and last seen seq are kept, so a restart resumes the same "
        "queue (default: ~/.config/chinwag/chat-<host>-<nick>.json)",
    )


def main(args: argparse.Namespace) -> int:
    """Run the terminal client until the user leaves; the exit code."""
    if not valid_nick(args.nick):
        print(f"chinwag chat: {args.nick!r} is not a valid nick", file=sys.stderr)
        return 2
    if not args.server.startswith(("http://", "https://")):
        print("chinwag chat: --server must be an http:// or https:// URL", file=sys.stderr)
        return 2
    try:
        from services.chat.app import ChatApp
    except ImportError as error:
        print(f"chinwag chat: {error}; it needs textual: pip install textual", file=sys.stderr)
        return 2
    state_path = args.state or default_path(args.server, args.nick)
    app = ChatApp(args.server, args.nick, password=args.password, state_path=state_path)
    app.run()
    return app.return_code or 0
