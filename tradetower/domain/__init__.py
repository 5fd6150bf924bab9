"""Domain types shared by the engine, the simulator and the live connectors."""

from tradetower.domain.bars import OHLCV, MarketData, read_bars, validate_bars
from tradetower.domain.instrument import AssetClass, Instrument
from tradetower.domain.orders import (
    Bar,
    Fill,
    Liquidity,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    client_order_id,
)

__all__ = [
    "OHLCV",
    "AssetClass",
    "Bar",
    "Fill",
    "Instrument",
    "Liquidity",
    "MarketData",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "Position",
    "Side",
    "TimeInForce",
    "client_order_id",
    "read_bars",
    "validate_bars",
]
