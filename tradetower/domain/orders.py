"""Orders, fills and positions as the engine and connectors see them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from tradetower import kernel_abi as abi


class Side(IntEnum):
    BUY = abi.BUY
    SELL = abi.SELL


class OrderType(IntEnum):
    MARKET = abi.MARKET
    LIMIT = abi.LIMIT
    STOP = abi.STOP


class TimeInForce(IntEnum):
    GTC = abi.GTC
    IOC = abi.IOC


class OrderStatus(IntEnum):
    OPEN = abi.ST_OPEN
    FILLED = abi.ST_FILLED
    CANCELLED = abi.ST_CANCELLED
    REJECTED = abi.ST_REJECTED


class Liquidity(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"


def client_order_id(bot_id: str, purpose: str, seq: int) -> str:
    """``tt-{botId}-{purpose}-{seq}``: the idempotency key of every order we send."""
    return f"tt-{bot_id}-{purpose}-{seq}"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    qty: float
    type: OrderType = OrderType.MARKET
    price: float = float("nan")
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    client_order_id: str = ""
    tag: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: int
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    liquidity: Liquidity
    timestamp_ms: int
    remaining: float
    liquidation: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: float
    avg_price: float

    @property
    def is_flat(self) -> bool:
        return self.qty == 0.0


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order as the venue reports it."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: float
    status: OrderStatus
    price: float = float("nan")
    filled: float = 0.0
    avg_fill_price: float = float("nan")
    exchange_order_id: str = ""
    reduce_only: bool = False


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``timestamp_ms`` is the bar's open time, epoch milliseconds UTC."""

    timestamp_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
