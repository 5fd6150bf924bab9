"""The exchange connector protocol (PLATFORM.md §2).

The engine knows venues only through `ExchangeConnector`: the live brokers (Alpaca, Coinbase,
Tastytrade, IBKR), the paper connector and the simulator's exchange all implement it, and one
shared contract test suite holds them to it. Failures are raised as `tradetower.errors`
`ConnectorError` subclasses, whose `retryable` and `trips_breaker` flags drive the retry and
circuit-breaker logic of the resilience base.

Orders, fills, positions, instruments and bars are domain types (`tradetower.domain`); the
small shapes below are the connector's own. Their money and quantities are `Decimal`, as on the
whole live path (PLATFORM.md §1); times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tradetower.domain import Bar, Fill, Instrument, OrderRequest, OrderState, Position

__all__ = [
    "AccountInfo",
    "AccountType",
    "Balance",
    "ExchangeConnector",
    "HealthStatus",
    "MarketSession",
    "MarketStatus",
    "OrderEvent",
    "OrderPreview",
    "RegulatoryInfo",
    "SessionStatus",
    "Tick",
    "TradingSession",
]


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """Whether the venue session is usable; `needs_reauth` means a person must log in again."""

    valid: bool
    expires_at: datetime | None = None
    needs_reauth: bool = False


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """The answer of one cheap authenticated call (run every 30 s per connection)."""

    healthy: bool
    latency_ms: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset's balance: `free` can back new orders, `locked` is held by open orders."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class AccountType(StrEnum):
    CASH = "CASH"
    MARGIN = "MARGIN"


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Account-level figures, in the account's `currency`."""

    account_id: str
    currency: str
    account_type: AccountType
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    margin_used: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class RegulatoryInfo:
    """Pattern-day-trader status, the broker's day-trade count (authoritative) and leverage cap."""

    pdt: bool
    day_trade_count: int
    max_leverage: Decimal


@dataclass(frozen=True, slots=True)
class OrderPreview:
    """What the venue expects an order to cost, without placing it."""

    estimated_price: Decimal | None
    estimated_notional: Decimal | None
    estimated_fee: Decimal | None
    warnings: tuple[str, ...] = ()


class MarketSession(StrEnum):
    """The trading session in force (US equities: PRE 04:00, REGULAR 09:30, POST 16:00 ET)."""

    PRE = "PRE"
    REGULAR = "REGULAR"
    POST = "POST"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class MarketStatus:
    """The session now in force for a symbol, and when it next changes."""

    symbol: str
    session: MarketSession
    next_open: datetime | None = None
    next_close: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Whether any session (extended hours included) is open."""
        return self.session is not MarketSession.CLOSED


@dataclass(frozen=True, slots=True)
class TradingSession:
    """One trading day of a calendar; `early_close` marks a shortened day."""

    day: date
    opens_at: datetime
    closes_at: datetime
    early_close: bool = False


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order's new status, with the fill that caused it, if any (`order_events()`)."""

    order: OrderState
    at: datetime
    fill: Fill | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """A quote or trade update for one symbol (`ticks()`)."""

    symbol: str
    at: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None


@runtime_checkable
class ExchangeConnector(Protocol):
    """One account at one venue, in one environment (paper or live).

    Order ids: every order carries our client order id (``tt-{botId}-{purpose}-{seq}``), the
    idempotency key; the methods that find an order take it or the venue's exchange id.
    Calls raise `tradetower.errors.ConnectorError` subclasses.
    """

    # -------------------------------------------------------------- lifecycle

    async def connect(self) -> None:
        """Authenticate and open the session (and streams, lazily)."""
        ...

    async def close(self) -> None:
        """Close streams and the session; idempotent."""
        ...

    async def health_check(self) -> HealthStatus:
        """A cheap authenticated call, timed."""
        ...

    async def session_status(self) -> SessionStatus:
        """Whether the session is valid, when it expires, and whether a person must re-auth."""
        ...

    async def refresh_session(self) -> SessionStatus:
        """Renew the session's token ahead of expiry."""
        ...

    # -------------------------------------------------------------- account

    async def get_balances(self) -> Sequence[Balance]:
        """Every asset balance, read from the venue (never a cache)."""
        ...

    async def get_positions(self) -> Sequence[Position]:
        """Open positions."""
        ...

    async def get_account(self) -> AccountInfo:
        """Equity, cash and buying power."""
        ...

    async def get_regulatory_info(self) -> RegulatoryInfo:
        """PDT flag, the broker's day-trade count and the maximum leverage."""
        ...

    # -------------------------------------------------------------- orders

    async def place_order(self, request: OrderRequest) -> OrderState:
        """Send an order, keyed by its client order id (a resend of one is not a new order)."""
        ...

    async def cancel_order(
        self, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> OrderState:
        """Cancel one order, named by either id."""
        ...

    async def cancel_all(self, symbol: str | None = None) -> Sequence[OrderState]:
        """Cancel every open order (of `symbol`, when given), protective stops included."""
        ...

    async def modify_order(self, client_order_id: str, replacement: OrderRequest) -> OrderState:
        """Replace an open order: natively where the venue can, else cancel then re-place
        `replacement` (client id ``…-r{n}``), dropped if a fill wins the race."""
        ...

    async def get_order(
        self, *, client_order_id: str | None = None, exchange_order_id: str | None = None
    ) -> OrderState:
        """One order, named by either id (raises `OrderNotFoundError`)."""
        ...

    async def get_open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        """Every open order (of `symbol`, when given)."""
        ...

    async def get_fills(self, since: datetime) -> Sequence[Fill]:
        """Fills at or after `since`, oldest first (reconciliation after a restart or reconnect)."""
        ...

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Estimated price, notional and fee of an order, without placing it."""
        ...

    async def set_leverage(self, symbol: str, leverage: Decimal) -> Decimal:
        """Set the leverage for `symbol`; returns the leverage the venue applied."""
        ...

    async def place_protective_stop(self, request: OrderRequest) -> OrderState:
        """Rest a venue-native, reduce-only stop (purpose PROTECTIVE_STOP) for a bot's SL."""
        ...

    # -------------------------------------------------------------- streams

    def order_events(self) -> AsyncIterator[OrderEvent]:
        """Order status changes and fills, as they happen."""
        ...

    def ticks(self, symbols: Sequence[str]) -> AsyncIterator[Tick]:
        """Quote and trade updates for `symbols`."""
        ...

    # -------------------------------------------------------------- data

    async def get_candles(
        self, symbol: str, timeframe: str, start: datetime, end: datetime | None = None
    ) -> Sequence[Bar]:
        """Bars of `timeframe` (``"1m"``, ``"1h"``, ``"1d"``...) from `start` up to `end`."""
        ...

    async def get_instrument(self, symbol: str) -> Instrument:
        """The instrument for a canonical symbol (cached 24 h by callers)."""
        ...

    async def search_instruments(self, query: str, limit: int = 50) -> Sequence[Instrument]:
        """Instruments whose symbol or name matches `query`."""
        ...

    async def market_status(self, symbol: str) -> MarketStatus:
        """The session in force for `symbol` now."""
        ...

    async def trading_calendar(
        self, symbol: str, start: date, end: date
    ) -> Sequence[TradingSession]:
        """The trading days of `symbol`'s market between `start` and `end`, inclusive."""
        ...
