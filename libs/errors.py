"""The errors a caller can act on, each with its HTTP status, code and IRC numeric.

Raised anywhere (gateway, or a service answering over request/reply) and mapped
once, at the HTTP edge, to ``{"error": {"code", "numeric", "message"}}``.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ErrorBody(msgspec.Struct, frozen=True):
    """The wire form of an error, on HTTP and on internal request/reply."""

    status: int
    code: str
    message: str
    numeric: str | None = None


class ChatError(Exception):
    """A refused request: bad input, missing permission or a missing object."""

    def __init__(self, status: int, code: str, message: str, numeric: str | None = None) -> None:
        super().__init__(message)
        self.body = ErrorBody(status=status, code=code, message=message, numeric=numeric)
        self.retry_after: float | None = None

    @classmethod
    def from_body(cls, body: ErrorBody) -> ChatError:
        return cls(body.status, body.code, body.message, body.numeric)

    @property
    def status(self) -> int:
        return self.body.status

    @property
    def code(self) -> str:
        return self.body.code

    def wire(self) -> dict[str, Any]:
        """The API's error body: ``{"error": {"code", "numeric", "message"}}``."""
        body = self.body
        return {"error": {"code": body.code, "numeric": body.numeric, "message": body.message}}


def validation(message: str) -> ChatError:
    return ChatError(400, "ERR_VALIDATION", message)


def unknown_command(command: str) -> ChatError:
    return ChatError(400, "ERR_UNKNOWNCOMMAND", f"{command}: unknown command", "421")


def need_more_params(command: str) -> ChatError:
    return ChatError(400, "ERR_NEEDMOREPARAMS", f"{command}: not enough parameters", "461")


def erroneous_nick(nick: str) -> ChatError:
    return ChatError(400, "ERR_ERRONEUSNICKNAME", f"{nick!r}: erroneous nickname", "432")


def no_text() -> ChatError:
    return ChatError(400, "ERR_NOTEXTTOSEND", "no text to send", "412")


def no_recipient(command: str) -> ChatError:
    return ChatError(400, "ERR_NORECIPIENT", f"no recipient given ({command})", "411")


def bad_channel_name(name: str) -> ChatError:
    return ChatError(400, "ERR_BADCHANMASK", f"{name!r}: bad channel name", "476")


def unauthorized(message: str = "missing, unknown or revoked token") -> ChatError:
    return ChatError(401, "ERR_UNAUTHORIZED", message)


def password_mismatch() -> ChatError:
    return ChatError(401, "ERR_PASSWDMISMATCH", "wrong nick or password", "464")


def cannot_send(channel: str) -> ChatError:
    return ChatError(403, "ERR_CANNOTSENDTOCHAN", f"{channel}: cannot send to channel", "404")


def not_on_channel(channel: str) -> ChatError:
    return ChatError(403, "ERR_NOTONCHANNEL", f"{channel}: you're not on that channel", "442")


def no_such_nick(nick: str) -> ChatError:
    return ChatError(404, "ERR_NOSUCHNICK", f"{nick}: no such nick", "401")


def no_such_channel(channel: str) -> ChatError:
    return ChatError(404, "ERR_NOSUCHCHANNEL", f"{channel}: no such channel", "403")


def nick_in_use(nick: str) -> ChatError:
    return ChatError(409, "ERR_NICKNAMEINUSE", f"{nick}: nickname is already in use", "433")


def idempotency_in_flight() -> ChatError:
    return ChatError(
        409, "ERR_IDEMPOTENCY_IN_FLIGHT", "a request with this idempotency key is in flight"
    )


def idempotency_mismatch() -> ChatError:
    return ChatError(
        422, "ERR_IDEMPOTENCY_MISMATCH", "idempotency key reused with a different command"
    )


def too_large(limit: int) -> ChatError:
    return ChatError(413, "ERR_TOO_LARGE", f"body over the limit of {limit} bytes")


def rate_limited(retry_after: float) -> ChatError:
    error = ChatError(429, "ERR_RATE_LIMITED", f"rate limited; retry in {retry_after:.1f}s")
    error.retry_after = retry_after
    return error


def unavailable(message: str) -> ChatError:
    return ChatError(503, "ERR_UNAVAILABLE", message)


def chanop_needed(channel: str) -> ChatError:
    return ChatError(403, "ERR_CHANOPRIVSNEEDED", f"{channel}: you're not channel operator", "482")


def banned(channel: str) -> ChatError:
    return ChatError(403, "ERR_BANNEDFROMCHAN", f"{channel}: cannot join channel (+b)", "474")


def invite_only(channel: str) -> ChatError:
    return ChatError(403, "ERR_INVITEONLYCHAN", f"{channel}: cannot join channel (+i)", "473")


def bad_key(channel: str) -> ChatError:
    return ChatError(403, "ERR_BADCHANNELKEY", f"{channel}: cannot join channel (+k)", "475")


def channel_full(channel: str) -> ChatError:
    return ChatError(403, "ERR_CHANNELISFULL", f"{channel}: cannot join channel (+l)", "471")


def user_not_in_channel(nick: str, channel: str) -> ChatError:
    return ChatError(
        404, "ERR_USERNOTINCHANNEL", f"{nick} {channel}: they aren't on that channel", "441"
    )


def user_on_channel(nick: str, channel: str) -> ChatError:
    return ChatError(409, "ERR_USERONCHANNEL", f"{nick} {channel}: is already on channel", "443")


def users_dont_match() -> ChatError:
    return ChatError(403, "ERR_USERSDONTMATCH", "cannot change mode for other users", "502")


def umode_unknown(flag: str) -> ChatError:
    return ChatError(400, "ERR_UMODEUNKNOWNFLAG", f"{flag}: unknown MODE flag", "501")


def already_registered() -> ChatError:
    return ChatError(409, "ERR_ALREADYREGISTRED", "this session already has a password", "462")


def no_nickname_given() -> ChatError:
    return ChatError(400, "ERR_NONICKNAMEGIVEN", "no nickname given", "431")


# --- beyond IRC: replies, reactions, edits, deletes, pins, read markers, keys --------


def no_such_message(message_id: str, why: str = "no such message") -> ChatError:
    return ChatError(404, "ERR_NO_SUCH_MESSAGE", f"{message_id}: {why}")


def not_author() -> ChatError:
    return ChatError(403, "ERR_NOT_AUTHOR", "only the author may do that to a message")


def no_such_key(nick: str) -> ChatError:
    return ChatError(404, "ERR_NO_SUCH_KEY", f"{nick}: no signing key announced")
