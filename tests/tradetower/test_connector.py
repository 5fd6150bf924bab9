"""The ExchangeConnector protocol's surface and its small value types."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradetower.connector import (
    Balance,
    ExchangeConnector,
    MarketSession,
    MarketStatus,
    SessionStatus,
    Tick,
)

# PLATFORM.md §2, "Protocol": every method, grouped as the spec lists them.
SPEC_METHODS = {
    "lifecycle": ["connect", "close", "health_check", "session_status", "refresh_session"],
    "account": ["get_balances", "get_positions", "get_account", "get_regulatory_info"],
    "orders": [
        "place_order",
        "cancel_order",
        "cancel_all",
        "modify_order",
        "get_order",
        "get_open_orders",
        "get_fills",
        "preview_order",
        "set_leverage",
        "place_protective_stop",
    ],
    "streams": ["order_events", "ticks"],
    "data": [
        "get_candles",
        "get_instrument",
        "search_instruments",
        "market_status",
        "trading_calendar",
    ],
}
ALL_METHODS = [m for group in SPEC_METHODS.values() for m in group]
STREAMS = set(SPEC_METHODS["streams"])


def test_protocol_declares_every_spec_method() -> None:
    for name in ALL_METHODS:
        member = getattr(ExchangeConnector, name)
        # request/response calls are coroutines; streams are async iterators
        assert inspect.iscoroutinefunction(member) is (name not in STREAMS), name


def _fake_class(missing: str | None = None) -> type:
    async def call(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    async def stream(self: Any, *args: Any) -> AsyncIterator[Tick]:
        yield Tick("BTC/USD", datetime(2024, 1, 1, tzinfo=UTC), last=Decimal("1"))

    body = {n: (stream if n in STREAMS else call) for n in ALL_METHODS if n != missing}
    return type("FakeConnector", (), body)


def test_a_complete_implementation_satisfies_the_protocol() -> None:
    assert isinstance(_fake_class()(), ExchangeConnector)


@pytest.mark.parametrize("missing", ["get_fills", "ticks", "trading_calendar"])
def test_an_incomplete_implementation_does_not(missing: str) -> None:
    assert not isinstance(_fake_class(missing)(), ExchangeConnector)


def test_value_types_are_frozen_and_compute_totals() -> None:
    bal = Balance("USD", free=Decimal("10.5"), locked=Decimal("2"))
    assert bal.total == Decimal("12.5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        bal.free = Decimal(0)  # type: ignore[misc]
    assert SessionStatus(valid=True).needs_reauth is False
    assert MarketStatus("AAPL", MarketSession.PRE).is_open
    assert not MarketStatus("AAPL", MarketSession.CLOSED).is_open
