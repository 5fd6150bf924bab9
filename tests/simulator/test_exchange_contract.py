"""The simulated exchange honours the connector protocol, as a broker connector must."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from conftest import make_bars

from simulator.exchange import SimulatedExchange
from tradetower.connector import ExchangeConnector
from tradetower.domain import Instrument, OrderRequest, OrderStatus, OrderType, Side
from tradetower.errors import InsufficientFundsError, InvalidOrderError, OrderNotFoundError

BARS = make_bars(
    [
        (100, 101, 99, 100),
        (100, 102, 98, 101),  # a buy limit at 98.5 fills here
        (101, 104, 100, 103),  # a sell limit at 103.5 fills here
        (103, 103, 95, 96),
        (96, 97, 95, 96),
    ],
    volume=1_000,
)
XUSD = Instrument(
    symbol="X/USD", tick=0.01, lot=0.001, min_notional=5, maker_fee=0.001, taker_fee=0.002
)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def venue() -> SimulatedExchange:
    return SimulatedExchange({"X/USD": BARS}, {"X/USD": XUSD}, quote="USD")


@pytest.mark.nojit
def test_is_an_exchange_connector() -> None:
    assert isinstance(venue(), ExchangeConnector)


@pytest.mark.nojit
def test_limit_order_lifecycle_with_balances_fills_and_events() -> None:
    async def scenario() -> None:
        ex = venue()
        await ex.connect()
        buy = OrderRequest(
            "X/USD", Side.BUY, 1.2345, OrderType.LIMIT, price=98.504, client_order_id="tt-b1-GRID-1"
        )
        state = await ex.place_order(buy)
        assert state.status is OrderStatus.OPEN
        assert state.price == 98.5 and state.qty == 1.234  # tick half-up, lot floored
        # the reservation moves quote from free to locked
        usd = (await ex.get_balances())[0]
        assert usd.asset == "USD"
        assert float(usd.locked) == pytest.approx(1.234 * 98.5 * 1.001)
        # resending the same client order id is not a new order
        again = await ex.place_order(buy)
        assert again.exchange_order_id == state.exchange_order_id
        assert len(await ex.get_open_orders()) == 1
        await ex.advance()
        events = [e async for e in ex.order_events()]
        assert len(events) == 1 and events[0].fill is not None
        fill = events[0].fill
        assert (fill.price, fill.qty) == (98.5, 1.234)
        assert fill.fee == pytest.approx(98.5 * 1.234 * 0.001)
        assert events[0].order.status is OrderStatus.FILLED
        positions = await ex.get_positions()
        assert positions[0].qty == pytest.approx(1.234) and positions[0].avg_price == 98.5
        sell = OrderRequest(
            "X/USD", Side.SELL, 1.234, OrderType.LIMIT, price=103.5, client_order_id="tt-b1-GRID-2"
        )
        await ex.place_order(sell)
        await ex.advance()
        fills = await ex.get_fills(datetime(2024, 1, 1, tzinfo=UTC))
        assert [f.price for f in fills] == [98.5, 103.5]
        usd = (await ex.get_balances())[0]
        expected = 10_000 + 1.234 * (103.5 - 98.5) - 1.234 * (98.5 + 103.5) * 0.001
        assert float(usd.free) == pytest.approx(expected)
        assert not await ex.get_positions()
        await ex.close()

    run(scenario())


@pytest.mark.nojit
def test_cancel_modify_and_unknown_orders() -> None:
    async def scenario() -> None:
        ex = venue()
        req = OrderRequest("X/USD", Side.BUY, 1, OrderType.LIMIT, price=90, client_order_id="c1")
        await ex.place_order(req)
        cancelled = await ex.cancel_order(client_order_id="c1")
        assert cancelled.status is OrderStatus.CANCELLED
        assert float((await ex.get_balances())[0].locked) == 0.0
        await ex.place_order(
            OrderRequest("X/USD", Side.BUY, 1, OrderType.LIMIT, price=90, client_order_id="c2")
        )
        moved = await ex.modify_order(
            "c2", OrderRequest("X/USD", Side.BUY, 1, OrderType.LIMIT, price=91)
        )
        assert moved.client_order_id == "c2-r1" and moved.price == 91
        assert [o.client_order_id for o in await ex.get_open_orders()] == ["c2-r1"]
        assert len(await ex.cancel_all()) == 1
        with pytest.raises(OrderNotFoundError):
            await ex.get_order(client_order_id="nope")

    run(scenario())


@pytest.mark.nojit
def test_refusals_raise_typed_errors() -> None:
    async def scenario() -> None:
        ex = venue()
        with pytest.raises(InsufficientFundsError):
            await ex.place_order(OrderRequest("X/USD", Side.BUY, 500, OrderType.LIMIT, price=99))
        with pytest.raises(InvalidOrderError):  # 0.01 × 99 is below the 5 USD minimum
            await ex.place_order(OrderRequest("X/USD", Side.BUY, 0.01, OrderType.LIMIT, price=99))
        with pytest.raises(InsufficientFundsError):  # spot: nothing to sell
            await ex.place_order(OrderRequest("X/USD", Side.SELL, 1, OrderType.LIMIT, price=120))
        with pytest.raises(InvalidOrderError):
            await ex.place_order(OrderRequest("Y/USD", Side.BUY, 1, OrderType.MARKET))

    run(scenario())


@pytest.mark.nojit
def test_candles_never_show_the_future() -> None:
    async def scenario() -> None:
        ex = venue()
        start = datetime(2024, 1, 1, tzinfo=UTC)
        assert len(await ex.get_candles("X/USD", "native", start)) == 1
        await ex.advance(2)
        candles = await ex.get_candles("X/USD", "native", start)
        assert [c.close for c in candles] == [100, 101, 103]
        await ex.advance(10)
        assert ex.finished
        assert (await ex.market_status("X/USD")).is_open is False

    run(scenario())
