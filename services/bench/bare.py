"""A bare ASGI app answering every request at once with an empty long-poll page.

Run under uvicorn with the gateway's own server settings, it is the ceiling of
what any Python long-poll endpoint on this machine can answer.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send

_BODY = b'{"messages":[],"last_seq":0}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BODY))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message: Any = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
