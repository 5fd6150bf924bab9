"""The simulator's fill model, pinned down with hand-made bars and exact numbers.

Every case places orders from a tiny plain-Python strategy and checks what a user would see in
the fills and orders frames, the metrics and the events the strategy received. A strategy acts
at the close of the bar it is handling, so orders placed in ``on_start`` (bar 0) are eligible
from bar 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import make_bars

from simulator import backtest
from simulator.result import BacktestResult
from tradetower import kernel_abi as K
from tradetower.domain import Instrument
from tradetower.strategy import Event, Strategy, StrategyContext

pytestmark = pytest.mark.nojit

Hook = Callable[[StrategyContext, Event], None]


class Script(Strategy):
    """A strategy made of callables; it records every event and the account at each one."""

    name = "script"

    def __init__(
        self,
        start: Callable[[StrategyContext], None] | None = None,
        *,
        fill: Hook | None = None,
        cancel: Hook | None = None,
        trigger: Hook | None = None,
        timer: Hook | None = None,
        signal: Hook | None = None,
        signals: np.ndarray | None = None,
        stop: Callable[[StrategyContext], None] | None = None,
    ) -> None:
        self._start = start
        self._hooks = {
            "fill": fill,
            "cancel": cancel,
            "trigger": trigger,
            "timer": timer,
            "signal": signal,
        }
        self._signals = signals
        self._stop = stop
        self.events: list[Event] = []
        self.seen: list[dict[str, Any]] = []  # account as the strategy saw it at each event
        self.ids: dict[str, int] = {}

    def signals(self, data: Any) -> np.ndarray | None:
        return self._signals

    def _record(self, ctx: StrategyContext, kind: str) -> None:
        self.seen.append({"kind": kind, "cash": ctx.cash, "free": ctx.free_cash})

    def on_start(self, ctx: StrategyContext) -> None:
        self._record(ctx, "start")
        if self._start:
            self._start(ctx)

    def _on(self, ctx: StrategyContext, event: Event) -> None:
        self.events.append(event)
        self._record(ctx, event.kind)
        hook = self._hooks[event.kind]
        if hook:
            hook(ctx, event)

    on_fill = on_cancel = on_trigger = on_timer = on_signal = _on

    def on_stop(self, ctx: StrategyContext) -> None:
        self._record(ctx, "stop")
        if self._stop:
            self._stop(ctx)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


FEES = Instrument(symbol="ASSET", maker_fee=0.001, taker_fee=0.002)
PERP = Instrument(symbol="ASSET", margin=True, leverage=5, maker_fee=0.0, taker_fee=0.0005)

FLAT = (100.0, 101.0, 99.0, 100.0)


def run(
    rows: list[tuple[float, float, float, float]],
    strategy: Script,
    *,
    instrument: Instrument = FEES,
    volume: float = 1e9,
    **settings: Any,
) -> BacktestResult:
    settings.setdefault("cash", 10_000.0)
    return backtest(
        strategy, make_bars(rows, volume=volume), instrument=instrument, mode="python", **settings
    )


def order(r: BacktestResult, oid: int) -> pd.Series:
    return r.orders.set_index("order_id").loc[oid]


# --------------------------------------------------------------------------- market orders


def test_market_orders_fill_at_the_next_bars_open_with_the_taker_fee() -> None:
    rows = [FLAT, (102, 104, 101, 103), (105, 106, 104, 105), (107, 108, 106, 107)]

    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.side == K.BUY:
            ctx.place(K.SELL, 2)

    s = Script(lambda ctx: ctx.place(K.BUY, 2), fill=on_fill)
    r = run(rows, s)
    f = r.fills
    assert f["bar"].tolist() == [1, 2]  # placed at bars 0 and 1: never the bar it was placed
    assert f["price"].tolist() == [102.0, 105.0]  # the opens, not the closes 100 / 103
    assert f["liquidity"].tolist() == ["TAKER", "TAKER"]
    assert f["fee"].tolist() == pytest.approx([102 * 2 * 0.002, 105 * 2 * 0.002])
    assert r.orders["placed_bar"].tolist() == [0, 1]
    assert r.orders["status"].tolist() == ["FILLED", "FILLED"]
    expected = 10_000 + 2 * (105 - 102) - 102 * 2 * 0.002 - 105 * 2 * 0.002
    assert r.metrics["final_equity"] == pytest.approx(expected, rel=1e-12)
    assert s.of("fill")[0].position == 2.0 and s.of("fill")[1].position == 0.0


# --------------------------------------------------------------------------- limit orders


@pytest.mark.parametrize(
    ("bar1", "price"),
    [
        ((100.5, 101.0, 97.0, 99.0), 98.0),  # the low touches 98: filled at the limit
        ((99.0, 99.5, 98.0, 99.0), 98.0),  # the low equals the limit: a touch fills
        ((95.0, 96.0, 94.0, 95.0), 95.0),  # the bar gaps below: filled at the better open
    ],
)
def test_limit_buy_fills_at_its_price_or_at_a_gapped_open(
    bar1: tuple[float, float, float, float], price: float
) -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 1, type=K.LIMIT, price=98))
    r = run([FLAT, bar1, FLAT], s, close_at_end=False)
    assert len(r.fills) == 1
    fill = r.fills.iloc[0]
    assert (fill["bar"], fill["price"], fill["liquidity"]) == (1, price, "MAKER")
    assert fill["fee"] == pytest.approx(price * 0.001)
    assert s.of("fill")[0].remaining == 0.0


def test_limit_buy_not_touched_stays_open_then_ends_cancelled() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 1, type=K.LIMIT, price=98.5))
    r = run([FLAT, FLAT, (100, 100, 98.6, 99)], s)
    assert r.fills.empty
    o = order(r, 0)
    assert (o["status"], o["reason"], o["filled"]) == ("CANCELLED", "END_OF_DATA", 0.0)


@pytest.mark.parametrize(
    ("bar2", "price"),
    [
        ((103.0, 105.0, 102.0, 104.0), 104.0),  # the high touches 104: filled at the limit
        ((106.0, 107.0, 105.0, 106.0), 106.0),  # the bar gaps above: filled at the better open
    ],
)
def test_limit_sell_mirrors_the_buy(bar2: tuple[float, float, float, float], price: float) -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.side == K.BUY:
            ctx.place(K.SELL, 1, type=K.LIMIT, price=104)

    s = Script(lambda ctx: ctx.place(K.BUY, 1), fill=on_fill)
    r = run([FLAT, FLAT, bar2, FLAT], s)
    sell = r.fills[r.fills["order_id"] == 1].iloc[0]
    assert (sell["bar"], sell["side"], sell["price"], sell["liquidity"]) == (2, -1, price, "MAKER")
    assert sell["fee"] == pytest.approx(price * 0.001)
    assert -2 not in r.fills["order_id"].tolist()  # flat at the end: nothing to close


# --------------------------------------------------------------------------- stops


@pytest.mark.parametrize(
    ("bar1", "touch"),
    [
        ((100.0, 106.0, 99.0, 105.0), 105.0),  # the path rises through the stop
        ((107.0, 108.0, 106.0, 107.0), 107.0),  # gaps above: triggered at the worse open
    ],
)
def test_stop_buy_triggers_on_the_path_and_fills_with_adverse_slippage(
    bar1: tuple[float, float, float, float], touch: float
) -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 2, type=K.STOP, price=105))
    r = run([FLAT, bar1, FLAT], s, slippage_bps=10, close_at_end=False)
    fill = r.fills.iloc[0]
    px = touch * (1 + 10e-4)
    assert (fill["bar"], fill["liquidity"]) == (1, "TAKER")
    assert fill["price"] == pytest.approx(px, rel=1e-12)
    assert fill["fee"] == pytest.approx(px * 2 * 0.002, rel=1e-12)
    assert fill["slippage_cost"] == pytest.approx(touch * 10e-4 * 2, rel=1e-9)
    assert r.metrics["slippage_cost"] == pytest.approx(touch * 10e-4 * 2, rel=1e-9)


@pytest.mark.parametrize(
    ("bar2", "touch"),
    [
        ((100.0, 101.0, 94.0, 96.0), 95.0),
        ((93.0, 94.0, 92.0, 93.0), 93.0),
    ],
)
def test_stop_sell_triggers_on_a_fall_and_fills_below_with_slippage(
    bar2: tuple[float, float, float, float], touch: float
) -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.side == K.BUY:
            ctx.place(K.SELL, 1, type=K.STOP, price=95)

    s = Script(lambda ctx: ctx.place(K.BUY, 1), fill=on_fill)
    r = run([FLAT, FLAT, bar2, FLAT], s, slippage_bps=10)
    buy, stop = r.fills.iloc[0], r.fills.iloc[1]
    assert buy["price"] == pytest.approx(100 * 1.001)  # the market entry slips too
    assert (stop["bar"], stop["order_id"], stop["liquidity"]) == (2, 1, "TAKER")
    assert stop["price"] == pytest.approx(touch * 0.999, rel=1e-12)
    assert stop["fee"] == pytest.approx(touch * 0.999 * 0.002, rel=1e-12)


def test_stop_not_reached_does_not_fill() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 1, type=K.STOP, price=101.5))
    r = run([FLAT, FLAT, (100, 101.4, 99, 101)], s)
    assert r.fills.empty


def test_volume_slippage_grows_with_the_share_of_the_bars_volume_up_to_its_cap() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1)  # 1/100 of the volume: 0.1 · 0.01 · 1e4 = 10 bps
        ctx.place(K.BUY, 10)  # 10/100: 100 bps, capped at 50

    r = run([FLAT, FLAT], Script(start), volume=100.0, slippage="volume", fees=0.0)
    assert r.fills["price"].tolist()[:2] == pytest.approx([100 * 1.001, 100 * 1.005])


def test_start_bar_skips_the_bars_before_it() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 1))
    rows = [FLAT, (90, 91, 89, 90), (95, 96, 94, 95), (97, 98, 96, 97)]
    r = run(rows, s, start_bar=1, close_at_end=False)
    assert (r.fills["bar"].iloc[0], r.fills["price"].iloc[0]) == (2, 95.0)
    assert s.seen[0]["kind"] == "start"
    assert r.orders["placed_bar"].tolist() == [1]


# --------------------------------------------------------------------------- maker / taker


def test_resting_limit_pays_maker_marketable_limit_pays_taker_without_slippage() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1, type=K.LIMIT, price=99.5)  # below the last price 100: rests
        ctx.place(K.BUY, 1, type=K.LIMIT, price=103)  # above it: marketable, takes

    s = Script(start)
    r = run([FLAT, (101.0, 102.0, 99.0, 100.0), FLAT], s, slippage_bps=10, close_at_end=False)
    f = r.fills.set_index("order_id")
    # The marketable limit fills at the open (path position 0), the resting one at its price.
    assert f.loc[1, "price"] == 101.0  # limit orders never slip
    assert f.loc[1, "liquidity"] == "TAKER"
    assert f.loc[1, "fee"] == pytest.approx(101 * 0.002)
    assert f.loc[0, "price"] == 99.5
    assert f.loc[0, "liquidity"] == "MAKER"
    assert f.loc[0, "fee"] == pytest.approx(99.5 * 0.001)
    assert r.fills["order_id"].tolist() == [1, 0]  # the open comes before the low
    assert r.metrics["fees_paid"] == pytest.approx(101 * 0.002 + 99.5 * 0.001)


# --------------------------------------------------------------------------- intrabar path


def _two_sided(rows: list[tuple[float, float, float, float]], **settings: Any) -> BacktestResult:
    """Long 1 from bar 1, then a buy limit at 98 and a sell limit at 100.5 resting from bar 2."""

    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.id == 0:
            ctx.place(K.BUY, 1, type=K.LIMIT, price=98)  # id 1
            ctx.place(K.SELL, 1, type=K.LIMIT, price=100.5)  # id 2

    return run(rows, Script(lambda ctx: ctx.place(K.BUY, 1), fill=on_fill), **settings)


def test_default_path_visits_the_nearer_extreme_first() -> None:
    # Bar 2: open 100, high 101 is 1 away, low 97 is 3 away: the high comes first.
    r = _two_sided([FLAT, FLAT, (100, 101, 97, 100), FLAT])
    bar2 = r.fills[r.fills["bar"] == 2]
    assert bar2["order_id"].tolist() == [2, 1]
    assert bar2["price"].tolist() == [100.5, 98.0]
    # The mirror bar: the low is nearer, so the buy comes first.
    r = _two_sided([FLAT, FLAT, (100, 103, 97.5, 100), FLAT])
    assert r.fills[r.fills["bar"] == 2]["order_id"].tolist() == [1, 2]


def test_conservative_path_visits_the_extreme_adverse_to_a_long_first() -> None:
    r = _two_sided([FLAT, FLAT, (100, 101, 97, 100), FLAT], intrabar="conservative")
    bar2 = r.fills[r.fills["bar"] == 2]
    assert bar2["order_id"].tolist() == [1, 2]  # the low first, although the high is nearer
    assert bar2["price"].tolist() == [98.0, 100.5]


def test_conservative_path_visits_the_high_first_for_a_short() -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.id == 0:
            ctx.place(K.BUY, 1, type=K.LIMIT, price=98)  # id 1
            ctx.place(K.SELL, 1, type=K.LIMIT, price=102.5)  # id 2

    rows = [FLAT, FLAT, (100, 103, 97.5, 100), FLAT]  # the low is nearer
    default = run(rows, Script(lambda ctx: ctx.place(K.SELL, 1), fill=on_fill), instrument=PERP)
    assert default.fills[default.fills["bar"] == 2]["order_id"].tolist() == [1, 2]
    cons = run(
        rows,
        Script(lambda ctx: ctx.place(K.SELL, 1), fill=on_fill),
        instrument=PERP,
        intrabar="conservative",
    )
    assert cons.fills[cons.fills["bar"] == 2]["order_id"].tolist() == [2, 1]


# --------------------------------------------------------------------------- participation


def test_participation_cap_fills_over_several_bars_and_keeps_the_order_open() -> None:
    seen: list[tuple[int, float, float, str]] = []

    def on_fill(ctx: StrategyContext, e: Event) -> None:
        seen.append((e.bar, e.qty, e.remaining, "open" if not e.order_done else "done"))

    s = Script(lambda ctx: ctx.place(K.BUY, 2.5, type=K.LIMIT, price=99.5), fill=on_fill)
    r = run([FLAT] * 5, s, volume=10.0, participation=0.1, close_at_end=False)
    # 10% of a bar's volume of 10 is 1 unit per bar.
    assert seen == [(1, 1.0, 1.5, "open"), (2, 1.0, 0.5, "open"), (3, 0.5, 0.0, "done")]
    assert r.fills["price"].tolist() == [99.5, 99.5, 99.5]
    o = order(r, 0)
    assert (o["status"], o["filled"], o["done_bar"]) == ("FILLED", 2.5, 3)


def test_participation_cap_is_shared_by_all_orders_of_an_instrument_in_a_bar() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 0.8, type=K.LIMIT, price=99.5)
        ctx.place(K.BUY, 0.8, type=K.LIMIT, price=99.5)

    r = run([FLAT] * 4, Script(start), volume=10.0, participation=0.1, close_at_end=False)
    assert r.fills["bar"].tolist() == [1, 1, 2]
    assert r.fills["order_id"].tolist() == [0, 1, 1]
    assert r.fills["qty"].tolist() == pytest.approx([0.8, 0.2, 0.6])


def test_ioc_remainder_is_cancelled_after_a_partial_fill() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 2.5, type=K.LIMIT, price=99.5, tif=K.IOC))
    r = run([FLAT] * 4, s, volume=10.0, participation=0.1, close_at_end=False)
    assert r.fills["qty"].tolist() == [1.0]
    o = order(r, 0)
    assert (o["status"], o["reason"], o["filled"], o["done_bar"]) == (
        "CANCELLED",
        "IOC_UNFILLED",
        1.0,
        1,
    )
    (fill,) = s.of("fill")
    (cancel,) = s.of("cancel")
    assert fill.remaining == 1.5
    assert (cancel.bar, cancel.code, cancel.remaining) == (1, K.R_IOC_UNFILLED, 1.5)


def test_ioc_limit_not_reached_in_its_first_bar_is_cancelled() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 1, type=K.LIMIT, price=98, tif=K.IOC))
    r = run([FLAT, FLAT, (99, 99, 97, 98), FLAT], s, close_at_end=False)
    assert r.fills.empty  # bar 2 reaches 98, but the IOC order had to act in bar 1
    o = order(r, 0)
    assert (o["status"], o["reason"], o["done_bar"]) == ("CANCELLED", "IOC_UNFILLED", 1)
    (cancel,) = s.of("cancel")
    assert (cancel.bar, cancel.code) == (1, K.R_IOC_UNFILLED)


def test_volume_slice_below_the_minimum_waits_for_a_bar_with_more_volume() -> None:
    inst = Instrument(symbol="ASSET", min_notional=50)
    bars = make_bars([FLAT] * 5)
    bars["volume"] = [1e9, 3.0, 10.0, 10.0, 10.0]  # 10%: 0.3 units (29.85 < 50), then 1 unit
    s = Script(lambda ctx: ctx.place(K.BUY, 1.5, type=K.LIMIT, price=99.5))
    r = backtest(s, bars, instrument=inst, participation=0.1, close_at_end=False)
    # Bar 1 cannot take a slice worth 50: the order waits instead of being cancelled. The last
    # slice (0.5 units, 49.75) belongs to an order already accepted and partly filled: it fills.
    assert r.fills["bar"].tolist() == [2, 3]
    assert r.fills["qty"].tolist() == [1.0, 0.5]
    assert order(r, 0)["status"] == "FILLED"
    assert s.of("cancel") == []


def test_market_buy_the_cash_cannot_cover_at_the_open_fills_what_it_can_and_cancels_the_rest() -> (
    None
):
    s = Script(lambda ctx: ctx.place(K.BUY, 9.9))  # 9.9 · 100 · 1.002 = 991.98 at the last price
    rows = [FLAT, (110, 111, 109, 110), (100, 101, 99, 100), FLAT]
    r = run(rows, s, cash=1_000.0, close_at_end=False)
    affordable = 1_000.0 / (110 * 1.002)  # the open gapped up 10%
    assert r.fills["bar"].tolist() == [1]  # the rest never fills later at another bar's price
    assert r.fills["qty"].iloc[0] == pytest.approx(affordable, rel=1e-12)
    o = order(r, 0)
    assert (o["status"], o["reason"], o["done_bar"]) == ("CANCELLED", "INSUFFICIENT_FUNDS", 1)
    (cancel,) = s.of("cancel")
    assert (cancel.bar, cancel.code) == (1, K.R_INSUFFICIENT_FUNDS)
    assert cancel.remaining == pytest.approx(9.9 - affordable)
    assert s.seen[-1]["cash"] == pytest.approx(0.0, abs=1e-9)


def test_fraction_sizing_uses_what_the_account_affords_at_the_fill() -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.id == 0:
            ctx.place(K.SELL, 1.0, fraction=True)  # everything held

    s = Script(lambda ctx: ctx.place(K.BUY, 0.5, fraction=True), fill=on_fill)
    r = run([FLAT, (102, 103, 101, 102), (104, 105, 103, 104)], s, cash=1_000.0)
    qty = 0.5 * 1_000.0 / (102 * 1.002)
    assert r.fills["qty"].tolist() == pytest.approx([qty, qty])
    assert r.fills["price"].tolist() == [102.0, 104.0]
    assert r.orders["qty"].tolist() == pytest.approx([qty, qty])  # the order's size, once known


def test_fraction_order_waiting_for_volume_is_sized_once() -> None:
    bars = make_bars([FLAT] * 5, volume=10.0)  # 10%: one unit per bar

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1)  # takes bar 1's whole allowance
        ctx.place(K.BUY, 0.05, fraction=True)  # 5% of the 900 free at bar 1: 0.45 units

    r = backtest(Script(start), bars, cash=1_000.0, participation=0.1, close_at_end=False)
    assert r.fills[["bar", "order_id"]].values.tolist() == [[1, 0], [2, 1]]
    assert r.fills["qty"].tolist() == pytest.approx([1.0, 0.45])
    assert order(r, 1)["qty"] == pytest.approx(0.45)


def test_reduce_only_never_opens_or_flips_a_position() -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.id == 1:
            ctx.place(K.SELL, 2, reduce_only=True)  # id 2: closes the 1 held, no more

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.SELL, 1, reduce_only=True)  # id 0: nothing to reduce
        ctx.place(K.BUY, 1)  # id 1

    s = Script(start, fill=on_fill)
    r = run([FLAT, FLAT, FLAT, FLAT], s, instrument=PERP, close_at_end=False)
    assert r.orders["status"].tolist() == ["CANCELLED", "FILLED", "CANCELLED"]
    assert r.orders["reason"].tolist() == ["REDUCE_ONLY", "", "REDUCE_ONLY"]
    assert r.orders["filled"].tolist() == [0.0, 1.0, 1.0]
    assert r.positions.iloc[:, 0].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert [(e.id, e.bar, e.code) for e in s.of("cancel")] == [
        (0, 1, K.R_REDUCE_ONLY),
        (2, 2, K.R_REDUCE_ONLY),
    ]


# --------------------------------------------------------------------------- rounding


def test_instrument_rounds_prices_half_up_and_quantities_down() -> None:
    inst = Instrument(symbol="ASSET", tick=0.5, lot=0.01, min_notional=50)

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1.239, type=K.LIMIT, price=97.74)  # 97.5, 1.23
        ctx.place(K.BUY, 1.0, type=K.LIMIT, price=97.75)  # half a tick: up to 98.0

    r = run([FLAT, (100, 101, 97.9, 99)], Script(start), instrument=inst, close_at_end=False)
    assert r.orders["price"].tolist() == [97.5, 98.0]
    assert r.orders["qty"].tolist() == [1.23, 1.0]
    assert r.fills[["order_id", "price", "qty"]].values.tolist() == [[1, 98.0, 1.0]]


def test_ticks_and_lots_that_are_not_powers_of_ten_round_to_their_own_multiples() -> None:
    inst = Instrument(symbol="ASSET", tick=0.25, lot=0.25)
    s = Script(lambda ctx: ctx.place(K.BUY, 1.3, type=K.LIMIT, price=97.63))  # 97.75 · 1.25
    r = run([FLAT, (99, 99, 97, 98)], s, instrument=inst, close_at_end=False)
    assert (r.orders["price"].iloc[0], r.orders["qty"].iloc[0]) == (97.75, 1.25)
    assert r.fills[["price", "qty"]].values.tolist() == [[97.75, 1.25]]


def test_order_below_min_notional_is_rejected_skipped_min_and_reported() -> None:
    inst = Instrument(symbol="ASSET", lot=0.01, min_notional=50)

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 0.499, type=K.LIMIT, price=100)  # 0.49 after the lot: 49 < 50
        ctx.place(K.BUY, 0.5, type=K.LIMIT, price=99)  # 49.5 < 50
        ctx.place(K.BUY, 0.51, type=K.LIMIT, price=99)  # 50.49: accepted

    s = Script(start)
    r = run([FLAT, FLAT], s, instrument=inst, close_at_end=False)
    assert r.orders["status"].tolist() == ["REJECTED", "REJECTED", "FILLED"]
    assert r.orders["reason"].tolist()[:2] == ["SKIPPED_MIN", "SKIPPED_MIN"]
    cancels = s.of("cancel")
    assert [(e.id, e.code, e.bar) for e in cancels] == [(0, K.R_MIN_SIZE, 0), (1, K.R_MIN_SIZE, 0)]
    assert r.fills["order_id"].tolist() == [2]


# --------------------------------------------------------------------------- spot funds


def test_spot_reservations_refuse_what_free_cash_cannot_cover_and_cancel_releases() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 8, type=K.LIMIT, price=95)  # reserves 760
        ctx.place(K.BUY, 3, type=K.LIMIT, price=90)  # 270 > 240 free: refused

    def on_cancel(ctx: StrategyContext, e: Event) -> None:
        if e.id == 1:
            ctx.cancel(0)
            ctx.place(K.BUY, 3, type=K.LIMIT, price=90)  # fits once 0 is cancelled

    s = Script(start, cancel=on_cancel)
    r = run([FLAT, FLAT, FLAT], s, cash=1_000.0, fees=0.0)
    assert r.orders["status"].tolist() == ["CANCELLED", "REJECTED", "CANCELLED"]
    assert r.orders["reason"].tolist() == ["USER", "INSUFFICIENT_FUNDS", "END_OF_DATA"]
    cancels = s.of("cancel")
    assert [(e.id, e.code) for e in cancels] == [(1, K.R_INSUFFICIENT_FUNDS), (0, K.R_USER)]
    free = [x["free"] for x in s.seen]
    # start: all free; at the refusal: 760 reserved; after cancel 0 and place 2: 270 reserved
    # (on_stop comes before the end-of-data cancels).
    assert free == pytest.approx([1_000.0, 240.0, 730.0, 730.0])
    assert [x["cash"] for x in s.seen] == [1_000.0] * 4


def test_spot_reservation_covers_the_fee_of_the_order() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 10, type=K.LIMIT, price=99.5)  # 995 + maker fee 0.995 > 995 cash

    s = Script(start)
    r = run([FLAT, FLAT], s, cash=995.0)
    assert order(r, 0)["reason"] == "INSUFFICIENT_FUNDS"
    r = run([FLAT, FLAT], Script(start), cash=995.995, close_at_end=False)
    assert order(r, 0)["status"] == "FILLED"
    assert r.metrics["final_equity"] == pytest.approx(995.995 - 0.995 + 10 * (100 - 99.5))


def test_spot_cannot_sell_more_than_it_holds() -> None:
    def on_fill(ctx: StrategyContext, e: Event) -> None:
        if e.id == 1:
            ctx.place(K.SELL, 1.5)  # id 2: holds 1 only
            ctx.place(K.SELL, 0.6, type=K.LIMIT, price=105)  # id 3: reserves 0.6
            ctx.place(K.SELL, 0.6)  # id 4: 0.4 left unreserved

    s = Script(lambda ctx: (ctx.place(K.SELL, 1), ctx.place(K.BUY, 1)), fill=on_fill)
    r = run([FLAT, FLAT, FLAT], s, close_at_end=False)
    status = r.orders["status"].tolist()
    assert status == ["REJECTED", "FILLED", "REJECTED", "CANCELLED", "REJECTED"]
    assert set(r.orders["reason"].iloc[[0, 2, 4]]) == {"INSUFFICIENT_FUNDS"}
    assert r.positions.iloc[:, 0].min() == 0.0
    assert r.positions.iloc[-1, 0] == 1.0


# --------------------------------------------------------------------------- margin


def test_margin_instrument_allows_a_short() -> None:
    s = Script(lambda ctx: ctx.place(K.SELL, 2))
    r = run([FLAT, FLAT, (100, 101, 94, 95)], s, instrument=PERP)
    assert r.fills["side"].tolist() == [-1, 1]
    assert r.fills["price"].tolist() == [100.0, 95.0]
    assert r.positions.iloc[1, 0] == -2.0
    fees = 2 * 100 * 0.0005 + 2 * 95 * 0.0005
    assert r.metrics["final_equity"] == pytest.approx(10_000 + 2 * 5 - fees)


def test_long_is_liquidated_at_its_liquidation_price() -> None:
    liq = 100 * (1 - 0.9 / 5)  # 82
    rows = [FLAT, FLAT, (100, 100, 80, 85), (85, 86, 84, 85)]
    s = Script(lambda ctx: ctx.place(K.BUY, 10))
    r = run(rows, s, instrument=PERP)
    f = r.fills
    assert f["liquidation"].tolist() == [False, True]
    last = f.iloc[1]
    assert (last["bar"], last["side"], last["qty"], last["order_id"]) == (2, -1, 10.0, -1)
    assert last["price"] == pytest.approx(liq)
    assert last["fee"] == pytest.approx(liq * 10 * 0.0005)
    assert r.metrics["n_liquidations"] == 1
    (_, liquidation) = s.of("fill")
    assert liquidation.is_liquidation and liquidation.position == 0.0
    expected = 10_000 + 10 * (liq - 100) - 10 * 100 * 0.0005 - 10 * liq * 0.0005
    assert r.metrics["final_equity"] == pytest.approx(expected)


def test_short_is_liquidated_above_its_average_and_a_gap_fills_at_the_open() -> None:
    liq = 100 * (1 + 0.9 / 5)  # 118
    s = Script(lambda ctx: ctx.place(K.SELL, 1))
    r = run([FLAT, FLAT, (100, 117.9, 99, 117)], s, instrument=PERP)
    assert not r.fills["liquidation"].any()
    r = run([FLAT, FLAT, (100, 118, 99, 117)], s, instrument=PERP)
    assert r.fills["liquidation"].tolist() == [False, True]
    assert r.fills["price"].iloc[1] == pytest.approx(liq)
    r = run([FLAT, FLAT, (125, 126, 124, 125)], s, instrument=PERP)
    assert r.fills["price"].iloc[1] == 125.0  # gapped through: the open is the price


def test_liquidation_never_acts_on_the_part_of_the_bar_before_the_position_opened() -> None:
    # 10x long opened by a stop at 110 on the rising leg (open 100 → low 80 → high 120 → close
    # 115): its liquidation price is 100.1, which the path visited only BEFORE the entry.
    lev10 = Instrument(symbol="ASSET", margin=True, leverage=10)
    s = Script(lambda ctx: ctx.place(K.BUY, 1, type=K.STOP, price=110))
    r = run([FLAT, (100, 120, 80, 115), (115, 116, 114, 115)], s, instrument=lev10)
    assert r.fills["liquidation"].tolist() == [False, False]
    assert r.fills["price"].tolist() == [110.0, 115.0]
    # The same entry, but the bar closes below 100.1: liquidated on the last leg.
    r = run([FLAT, (100, 120, 80, 100), (100, 101, 99, 100)], s, instrument=lev10)
    assert r.fills["liquidation"].tolist() == [False, True]
    assert r.fills["bar"].tolist() == [1, 1]
    assert r.fills["price"].iloc[1] == pytest.approx(110 * (1 - 0.9 / 10))


def test_liquidation_disabled_by_setting() -> None:
    s = Script(lambda ctx: ctx.place(K.BUY, 10))
    r = run([FLAT, FLAT, (100, 100, 80, 85)], s, instrument=PERP, liquidation=False)
    assert not r.fills["liquidation"].any()
    assert r.metrics["n_liquidations"] == 0


def test_funding_longs_pay_positive_rates_shorts_receive() -> None:
    rows = [FLAT, FLAT, (104, 105, 103, 104), (110, 111, 109, 110), FLAT]
    index = make_bars(rows).index
    # Paid at the first bar at or after its time, on the notional at that bar's open.
    funding = pd.Series([0.001, -0.002], index=[index[2], index[3] - pd.Timedelta(seconds=30)])
    inst = Instrument(symbol="ASSET", margin=True, leverage=2)
    cash: dict[str, float] = {}

    def stop(ctx: StrategyContext) -> None:
        cash["end"] = ctx.cash

    settings: dict[str, Any] = {"instrument": inst, "funding": funding, "close_at_end": False}
    long_run = run(rows, Script(lambda ctx: ctx.place(K.BUY, 2), stop=stop), **settings)
    paid = 2 * 104 * 0.001 + 2 * 110 * -0.002
    assert long_run.metrics["funding_paid"] == pytest.approx(paid)
    assert cash["end"] == pytest.approx(10_000 - 2 * 100 - paid)
    assert long_run.equity.iloc[-1] == pytest.approx(10_000 - 2 * 100 - paid + 2 * 100)
    assert long_run.equity.iloc[2] == pytest.approx(10_000 + 2 * 4 - 2 * 104 * 0.001)
    short_run = run(rows, Script(lambda ctx: ctx.place(K.SELL, 2), stop=stop), **settings)
    assert short_run.metrics["funding_paid"] == pytest.approx(-paid)
    assert cash["end"] == pytest.approx(10_000 + 2 * 100 + paid)


def test_no_funding_while_flat() -> None:
    rows = [FLAT, FLAT, FLAT]
    funding = pd.Series([0.01], index=[make_bars(rows).index[1]])
    r = run(rows, Script(lambda ctx: None), instrument=PERP, funding=funding)
    assert r.metrics["funding_paid"] == 0.0


# --------------------------------------------------------------------------- triggers


def test_cross_triggers_fire_at_their_level_or_at_a_gapped_open() -> None:
    def start(ctx: StrategyContext) -> None:
        ctx.arm_cross(105, +1, tag=7)  # id 0
        ctx.arm_cross(95, -1, tag=8)  # id 1
        ctx.arm_cross(90, -1)  # id 2: gapped through at bar 3

    s = Script(start)
    rows = [FLAT, (100, 106, 99, 104), (100, 101, 94, 96), (88, 89, 87, 88)]
    r = run(rows, s)
    got = [(e.id, e.bar, e.price, e.tag) for e in s.of("trigger")]
    assert got == [(0, 1, 105.0, 7), (1, 2, 95.0, 8), (2, 3, 88.0, 0)]
    assert r.fills.empty


def test_trigger_armed_in_a_bar_acts_from_the_next() -> None:
    def on_trigger(ctx: StrategyContext, e: Event) -> None:
        if e.id == 0:
            ctx.arm_cross(102, +1)  # bar 1 reaches 106 after 105, but this acts from bar 2

    s = Script(lambda ctx: ctx.arm_cross(105, +1), trigger=on_trigger)
    run([FLAT, (100, 106, 99, 104), (104, 104.5, 103, 104), FLAT], s)
    assert [(e.id, e.bar, e.price) for e in s.of("trigger")] == [(0, 1, 105.0), (1, 2, 104.0)]


def test_trailing_trigger_tracks_the_running_peak_across_bars() -> None:
    rows = [
        FLAT,
        (100, 110, 100, 108),  # peak 110: level 99
        (108, 112, 105, 106),  # low first (nearer) at 105 > 99, then the peak 112: level 100.8
        (106, 107, 100, 101),  # high 107 first, then 100 < 100.8: fires at 100.8
        FLAT,
    ]
    s = Script(lambda ctx: ctx.arm_trailing(100, 0.1, 1, tag=3))
    run(rows, s)
    (fired,) = s.of("trigger")
    assert (fired.bar, fired.tag) == (3, 3)
    assert fired.price == pytest.approx(112 * 0.9)


def test_trailing_trigger_for_a_short_tracks_the_trough() -> None:
    rows = [FLAT, (100, 100, 90, 92), (92, 98.5, 91, 98), (98, 98.9, 97, 98), (98, 98.9, 97, 98)]
    s = Script(lambda ctx: ctx.arm_trailing(100, 0.1, -1))
    run(rows, s)
    assert s.of("trigger") == []  # trough 90: fires at 99 and above, and the highs stay below
    rows[3] = (98, 100, 97, 99)  # the low first, then up through 99
    s = Script(lambda ctx: ctx.arm_trailing(100, 0.1, -1))
    run(rows, s)
    (fired,) = s.of("trigger")
    assert (fired.bar, fired.price) == (3, pytest.approx(99.0))


def test_disarmed_trigger_never_fires() -> None:
    s = Script(lambda ctx: (ctx.arm_cross(105, +1), ctx.disarm(0)))
    run([FLAT, (100, 106, 99, 104)], s)
    assert s.of("trigger") == []


# --------------------------------------------------------------------------- timers


def test_timers_fire_at_the_close_of_the_bar_holding_their_due_time() -> None:
    rows = [FLAT, FLAT, FLAT, (103, 104, 102, 103), (106, 107, 105, 106)]
    t = make_bars(rows).index.as_unit("ms").asi8

    def start(ctx: StrategyContext) -> None:
        ctx.set_timer(int(t[2]) + 59_999, tag=1)  # last ms of bar 2
        ctx.set_timer(int(t[2]), tag=2)  # first ms of bar 2
        ctx.set_timer(int(t[3]), tag=3)

    def on_timer(ctx: StrategyContext, e: Event) -> None:
        if e.tag == 3:
            ctx.place(K.BUY, 1)  # at bar 3's close: fills at bar 4's open

    s = Script(start, timer=on_timer)
    r = run(rows, s, close_at_end=False)
    assert [(e.tag, e.bar, e.time_ms) for e in s.of("timer")] == [
        (2, 2, t[2]),
        (1, 2, t[2]),
        (3, 3, t[3]),
    ]
    assert (r.fills["bar"].iloc[0], r.fills["price"].iloc[0]) == (4, 106.0)


# --------------------------------------------------------------------------- end of data


def test_close_at_end_closes_at_the_last_close_with_the_taker_fee() -> None:
    rows = [FLAT, FLAT, (105, 111, 104, 110)]
    r = run(rows, Script(lambda ctx: ctx.place(K.BUY, 3)), slippage_bps=10)
    end = r.fills.iloc[-1]
    assert (end["order_id"], end["bar"], end["side"], end["qty"]) == (-2, 2, -1, 3.0)
    assert end["price"] == pytest.approx(110 * 0.999)
    assert end["fee"] == pytest.approx(110 * 0.999 * 3 * 0.002)
    assert end["liquidity"] == "TAKER"
    assert r.positions.iloc[-1, 0] == 0.0
    assert r.equity.iloc[-1] == pytest.approx(r.metrics["final_equity"])


def test_close_at_end_false_leaves_the_position_open_and_marked_to_the_close() -> None:
    rows = [FLAT, FLAT, (105, 111, 104, 110)]
    r = run(rows, Script(lambda ctx: ctx.place(K.BUY, 3)), close_at_end=False)
    assert r.fills["order_id"].tolist() == [0]
    assert r.positions.iloc[-1, 0] == 3.0
    fee = 100 * 3 * 0.002
    assert r.metrics["final_equity"] == pytest.approx(10_000 - 300 - fee + 3 * 110)


def test_stop_callback_actions_are_applied_before_the_end() -> None:
    def stop(ctx: StrategyContext) -> None:
        ctx.place(K.SELL, 1, type=K.LIMIT, price=200)

    r = run([FLAT, FLAT], Script(lambda ctx: ctx.place(K.BUY, 1), stop=stop))
    assert r.orders["status"].tolist() == ["FILLED", "CANCELLED"]
    assert r.orders["reason"].tolist() == ["", "END_OF_DATA"]


# --------------------------------------------------------------------------- instruments


def test_two_instruments_and_the_bars_one_of_them_lacks() -> None:
    a = make_bars([FLAT, FLAT, (100, 101, 94, 96), (96, 97, 95, 96), FLAT, FLAT])
    b_rows = [(50, 51, 49, 50), (50, 51, 49, 50), (40, 41, 39, 40), (40, 41, 39, 40)]
    b_rows += [(44, 44.5, 43, 44), (50, 51, 49, 50)]
    b = make_bars(b_rows)
    b = b.drop(b.index[[2, 3]])  # B lacks bars 2 and 3, which would have gone through 45
    signals = np.zeros((6, 2), dtype=np.int64)
    signals[:, 1] = 1  # a signal code for B on every bar, including those it lacks

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1, symbol="B", type=K.LIMIT, price=45)  # order 0
        ctx.place(K.BUY, 1, symbol="A", type=K.LIMIT, price=95)  # order 1
        ctx.arm_cross(45, -1, symbol="B")
        ctx.arm_cross(95, -1, symbol="A")

    s = Script(start, signals=signals)
    r = backtest(s, {"A": a, "B": b}, mode="python", close_at_end=False)
    f = r.fills.set_index("order_id")
    assert (f.loc[1, "instrument"], f.loc[1, "bar"], f.loc[1, "price"]) == ("A", 2, 95.0)
    # B's order waits through the bars B lacks and fills at its next open, which gapped.
    assert (f.loc[0, "instrument"], f.loc[0, "bar"], f.loc[0, "price"]) == ("B", 4, 44.0)
    triggers = [(e.symbol, e.bar, e.price) for e in s.of("trigger")]
    assert triggers == [("A", 2, 95.0), ("B", 4, 44.0)]
    assert [e.bar for e in s.of("signal") if e.symbol == "B"] == [0, 1, 4, 5]
    # B's position is valued at its last known close through the gap.
    assert r.positions["position_B"].tolist() == [0, 0, 0, 0, 1, 1]
    assert r.equity.iloc[3] == pytest.approx(10_000 - 95 + 96)
    assert r.equity.iloc[5] == pytest.approx(10_000 - 95 - 44 + 100 + 50)


def test_close_at_end_uses_an_instruments_last_known_close() -> None:
    a = make_bars([FLAT, FLAT, FLAT, FLAT])
    b = make_bars([(50, 51, 49, 50), (50, 51, 49, 50), (52, 53, 51, 52), (60, 61, 59, 60)])
    b = b.iloc[:3]  # B ends a bar early, at 52

    def start(ctx: StrategyContext) -> None:
        ctx.place(K.BUY, 1, symbol="B")

    r = backtest(Script(start), {"A": a, "B": b}, mode="python", fees=0.001)
    end = r.fills.iloc[-1]
    assert (end["order_id"], end["instrument"], end["price"]) == (-2, "B", 52.0)
    assert r.metrics["final_equity"] == pytest.approx(10_000 + 2 - 50 * 0.001 - 52 * 0.001)


# --------------------------------------------------------------------------- many events


def test_a_strategy_answering_every_refusal_with_two_more_orders_runs_to_the_end() -> None:
    # Each refusal queues a cancel event; answering each with two more refusals means the queue
    # never drains. The venue must keep growing its logs instead of writing past them.
    def on_cancel(ctx: StrategyContext, e: Event) -> None:
        if e.id < 1_500:
            ctx.place(K.SELL, 1)  # nothing held: refused
            ctx.place(K.SELL, 1)

    s = Script(lambda ctx: ctx.place(K.SELL, 1), cancel=on_cancel)
    r = run([FLAT, FLAT, FLAT], s, max_actions=8, capacity=16)
    n = 1 + 2 * 1_500
    assert len(r.orders) == n
    assert (r.orders["status"] == "REJECTED").all()
    assert [e.id for e in s.of("cancel")] == list(range(n))


def test_cancel_all_of_many_resting_orders_reports_each_one() -> None:
    t = make_bars([FLAT] * 3).index.as_unit("ms").asi8

    def batch(ctx: StrategyContext) -> None:  # 200 resting buys (at most 256 per event)
        for k in range(200):
            ctx.place(K.BUY, 0.01, type=K.LIMIT, price=90 - k * 0.01)
        ctx.set_timer(int(t[1]))

    def on_timer(ctx: StrategyContext, e: Event) -> None:
        if len(s.of("timer")) < 4:
            batch(ctx)
        else:
            ctx.cancel_all()  # 800 cancels from one action

    s = Script(batch, timer=on_timer)
    r = run([FLAT, FLAT, FLAT], s, capacity=16)
    assert len(r.orders) == 800
    assert (r.orders["reason"] == "USER").all()
    assert sorted(e.id for e in s.of("cancel")) == list(range(800))
    assert s.seen[-1]["free"] == 10_000.0
