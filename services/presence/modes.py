"""Channel modes: parsing a MODE command and the masks of +b. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from libs import errors
from libs.errors import ChatError

FLAGS = "imnst"  # no parameter
MEMBER = "ov"  # a member's nick
LIST = "b"  # a mask; without one, the list is read
KEY, LIMIT = "k", "l"  # a parameter when set; none when unset
KNOWN = FLAGS + MEMBER + LIST + KEY + LIMIT
MAX_PARAM_MODES = 6
MAX_LIMIT = 2**31 - 1  # +l is stored as a PostgreSQL integer
MAX_MASK = 128  # characters of a +b mask: nick, user and host, with room to spare


@dataclass(frozen=True)
class Change:
    adding: bool
    letter: str
    param: str | None = None

    @property
    def sign(self) -> str:
        return "+" if self.adding else "-"


def unknown_mode(letter: str) -> ChatError:
    return ChatError(400, "ERR_UNKNOWNMODE", f"{letter}: is unknown mode char to me", "472")


def parse(params: list[str]) -> list[Change]:
    """``["+o-v", "bob", "carol"]`` → the changes, with their parameters, in order."""
    if not params:
        return []
    modestring, args = params[0], list(params[1:])
    adding = True
    changes: list[Change] = []
    for letter in modestring:
        if letter in "+-":
            adding = letter == "+"
            continue
        if letter not in KNOWN:
            raise unknown_mode(letter)
        param: str | None = None
        if letter in MEMBER or (letter == KEY and adding) or (letter == LIMIT and adding):
            if not args:
                raise errors.need_more_params("MODE")
            param = args.pop(0)
        elif letter in LIST or letter == KEY:
            param = args.pop(0) if args else None
        if param is not None and adding:
            _check_param(letter, param)
        changes.append(Change(adding, letter, param))
    if sum(1 for c in changes if c.param is not None) > MAX_PARAM_MODES:
        raise errors.validation(f"at most {MAX_PARAM_MODES} modes with parameters per command")
    if args:
        raise errors.validation(f"MODE: unused parameters {args}")
    return changes


def _check_param(letter: str, param: str) -> None:
    if letter == KEY and (not param or " " in param or "," in param):
        raise errors.validation("a channel key has no spaces or commas")
    if letter == LIMIT and not (
        param.isascii() and param.isdigit() and 1 <= int(param) <= MAX_LIMIT
    ):
        raise errors.validation(f"a channel limit is a number from 1 to {MAX_LIMIT}")
    if letter in LIST and len(param) > MAX_MASK:
        raise errors.validation(f"a mask has at most {MAX_MASK} characters")


def is_list_query(changes: list[Change]) -> bool:
    """``MODE #chan +b`` (or ``b``): read the ban list."""
    return len(changes) == 1 and changes[0].letter in LIST and changes[0].param is None


def format_changes(changes: list[Change]) -> list[str]:
    """Changes as IRC sends them: ``["+o-v", "bob", "carol"]``."""
    modestring, args, sign = "", [], ""
    for change in changes:
        if change.sign != sign:
            sign = change.sign
            modestring += sign
        modestring += change.letter
        if change.param is not None:
            args.append(change.param)
    return [modestring, *args] if modestring else []


def mode_string(flags: str, key: str | None, limit: int | None, show_key: bool) -> list[str]:
    """RPL_CHANNELMODEIS parameters: ``["+klnt", "key", "10"]``."""
    letters = "".join(sorted(set(flags) | ({"k"} if key else set()) | ({"l"} if limit else set())))
    params = [f"+{letters}"]
    if key:
        params.append(key if show_key else "*")
    if limit:
        params.append(str(limit))
    return params
