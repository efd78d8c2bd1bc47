"""A database that cannot be reached is a clear 503 with Retry-After, never a 500."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from libs.settings import Settings
from services.gateway import auth, stamps
from services.gateway.acks import Acknowledgements
from services.gateway.app import Gateway, create_app
from services.gateway.callers import Callers
from services.gateway.longpoll import WaiterHub


class _DownPool:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetchrow(self, *args: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
    ],
    ids=repr,
)
async def test_a_request_while_the_database_is_down_is_answered_503(error: Exception) -> None:
    settings = Settings()
    pool: Any = _DownPool(error)
    gateway = Gateway(
        settings=settings,
        pool=pool,
        nc=None,  # type: ignore[arg-type]
        js=None,  # type: ignore[arg-type]
        hub=WaiterHub(),
        commands=None,  # type: ignore[arg-type]
        logins=auth.RateLimiter(1, 1),
        commands_limiter=auth.RateLimiter(1, 1),
        challenges=stamps.Challenges(b"key", 0),
        acks=Acknowledgements(pool),
        callers=Callers(pool),
    )
    app = create_app(settings, gateway)
    app.state.gateway = gateway
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/api/v1/state", headers={"Authorization": "Bearer token"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "ERR_UNAVAILABLE"
