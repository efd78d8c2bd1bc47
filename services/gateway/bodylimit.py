"""Refusing request bodies over the limit with 413, before anything parses them."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs import errors


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is answered 413 and never parsed.

    A declared ``Content-Length`` is checked at once (the server delivers no more than
    it declares). A chunked body has no length up front, so it is read here, up to the
    limit, and handed on whole: every route sees the same 413, whether or not it reads
    its body and however its framework would report a failed read.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [value for name, value in scope["headers"] if name == b"content-length"]
        if lengths:
            if any(not v.isdigit() or int(v) > self.limit for v in lengths):
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
        pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = errors.too_large(self.limit)
        response = JSONResponse(error.wire(), status_code=error.status)
        await response(scope, receive, send)
