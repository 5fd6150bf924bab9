"""Accounting invariants of the simulated exchange under random strategies (hypothesis).

A random plain-Python strategy (a seeded RNG decides its limit, stop and market orders and its
cancels) trades a random walk. Whatever it does, the venue must keep its books: the account it
reports at every event and the equity curve follow from the fill log alone, spot balances never
go negative, fills stay inside their bar, nothing fills on the bar it was placed, and a re-run
gives the same logs. The same case also runs with ``NUMBA_DISABLE_JIT=1`` and must give the
same fills.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator.result import BacktestResult
from tradetower import kernel_abi as K
from tradetower.domain import Instrument
from tradetower.strategy import Event, Strategy, StrategyContext

CASH0 = 10_000.0


class RandomTrader(Strategy):
    """Places and cancels orders at random; records what it sees at every event."""

    name = "random"

    def __init__(self, seed: int, timer_every: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.timer_every = timer_every
        self.open: list[int] = []
        self.fills_seen = 0
        # (event kind, bar, fills seen so far, cash, position, free cash)
        self.seen: list[tuple[str, int, int, float, float, float]] = []

    def _look(self, ctx: StrategyContext, kind: str, bar: int) -> None:
        self.seen.append((kind, bar, self.fills_seen, ctx.cash, ctx.position(), ctx.free_cash))

    def _act(self, ctx: StrategyContext) -> None:
        r = self.rng
        price = ctx.price()
        for _ in range(int(r.integers(0, 4))):
            if self.open and r.random() < 0.3:
                ctx.cancel(self.open.pop(int(r.integers(len(self.open)))))
                continue
            side = K.BUY if r.random() < 0.55 else K.SELL
            kind = (K.MARKET, K.LIMIT, K.LIMIT, K.STOP)[int(r.integers(4))]
            qty = float(r.uniform(0.05, 20.0))
            level = price * (1 + float(r.normal(0, 0.004)))
            tif = K.IOC if r.random() < 0.1 else K.GTC
            fraction = kind == K.MARKET and r.random() < 0.2
            if fraction:
                qty = float(r.uniform(0.05, 1.0))
            self.open.append(
                ctx.place(side, qty, type=kind, price=level, tif=tif, fraction=fraction)
            )

    def on_start(self, ctx: StrategyContext) -> None:
        self._look(ctx, "start", -1)
        self._act(ctx)
        ctx.set_timer(ctx.now_ms + 60_000 * self.timer_every)

    def on_fill(self, ctx: StrategyContext, event: Event) -> None:
        self.fills_seen += 1
        self._look(ctx, "fill", event.bar)
        if self.rng.random() < 0.5:
            self._act(ctx)

    def on_cancel(self, ctx: StrategyContext, event: Event) -> None:
        self._look(ctx, "cancel", event.bar)

    def on_timer(self, ctx: StrategyContext, event: Event) -> None:
        self._look(ctx, "timer", event.bar)
        self._act(ctx)
        ctx.set_timer(ctx.now_ms + 60_000 * self.timer_every)

    def on_bar(self, ctx: StrategyContext, event: Event) -> None:
        self._look(ctx, "bar", event.bar)
        if self.rng.random() < 0.3:
            self._act(ctx)


class EveryBarTrader(RandomTrader):
    wants_bars = True


@dataclass(frozen=True)
class Case:
    seed: int
    n_bars: int
    walk_seed: int
    every_bar: bool
    margin: bool
    fees: float
    slippage_bps: float
    participation: float
    conservative: bool
    lot: float

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="ASSET",
            tick=0.01,
            lot=self.lot,
            maker_fee=self.fees,
            taker_fee=self.fees * 2,
            margin=self.margin,
            leverage=20.0 if self.margin else 1.0,
        )

    def bars(self) -> pd.DataFrame:
        return random_walk(self.n_bars, seed=self.walk_seed, vol=0.004)

    def run(self) -> tuple[BacktestResult, RandomTrader]:
        strategy = (EveryBarTrader if self.every_bar else RandomTrader)(self.seed)
        result = backtest(
            strategy,
            self.bars(),
            instrument=self.instrument(),
            cash=CASH0,
            slippage_bps=self.slippage_bps,
            participation=self.participation,
            intrabar="conservative" if self.conservative else "default",
            mode="python",
        )
        return result, strategy


cases = st.builds(
    Case,
    seed=st.integers(0, 2**32 - 1),
    n_bars=st.integers(20, 250),
    walk_seed=st.integers(0, 1000),
    every_bar=st.booleans(),
    margin=st.booleans(),
    fees=st.sampled_from([0.0, 0.0005, 0.002]),
    slippage_bps=st.sampled_from([0.0, 0.0, 5.0]),
    participation=st.sampled_from([0.0, 0.0, 0.002]),
    conservative=st.booleans(),
    lot=st.sampled_from([0.0, 0.001, 1.0]),
)


def ledger(fills: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Cash and position after each fill, from the fill log alone."""
    signed = (fills["side"] * fills["qty"]).to_numpy(dtype=float)
    flows = -signed * fills["price"].to_numpy(dtype=float) - fills["fee"].to_numpy(dtype=float)
    return CASH0 + np.cumsum(flows), np.cumsum(signed)


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_books_follow_from_the_fill_log(case: Case) -> None:
    r, s = case.run()
    f = r.fills
    bars = case.bars()
    cash, pos = ledger(f)
    # What the strategy was told at every event is what the fills so far imply.
    for kind, _bar, k, seen_cash, seen_pos, free in s.seen:
        want_cash = cash[k - 1] if k else CASH0
        want_pos = pos[k - 1] if k else 0.0
        assert seen_cash == pytest.approx(want_cash, rel=1e-9, abs=1e-7), kind
        assert seen_pos == pytest.approx(want_pos, rel=1e-9, abs=1e-9), kind
        assert free <= seen_cash + 1e-7
    # The equity curve, bar by bar: cash plus positions at the close, from the fills alone.
    per_bar = pd.DataFrame({"bar": f["bar"], "cash": cash, "pos": pos}).groupby("bar").last()
    per_bar = per_bar.reindex(range(len(bars))).ffill().fillna({"cash": CASH0, "pos": 0.0})
    equity = per_bar["cash"].to_numpy() + per_bar["pos"].to_numpy() * bars["close"].to_numpy()
    np.testing.assert_allclose(r.equity.to_numpy(), equity, rtol=1e-9, atol=1e-6)
    # Value is conserved net of fees: the final equity is the initial cash plus what every
    # fill made against the last close, less every fee.
    last = float(bars["close"].iloc[-1])
    pnl = (f["side"] * f["qty"] * (last - f["price"])).sum() - f["fee"].sum()
    assert r.metrics["final_equity"] == pytest.approx(CASH0 + pnl, rel=1e-9, abs=1e-6)
    assert r.metrics["fees_paid"] == pytest.approx(f["fee"].sum(), rel=1e-9, abs=1e-12)
    if len(f):
        assert pos[-1] == pytest.approx(0.0, abs=1e-9)  # closed at the end of the data
    # Each order's filled quantity is the sum of its fills, never more than its size.
    o = r.orders.set_index("order_id")
    filled = f[f["order_id"] >= 0].groupby("order_id")["qty"].sum()
    filled = filled.reindex(o.index, fill_value=0.0)
    np.testing.assert_allclose(o["filled"].to_numpy(), filled.to_numpy(), rtol=1e-12)
    assert (o["filled"] <= o["qty"] * (1 + 1e-12) + 1e-12).all()
    done = o["status"] == "FILLED"
    np.testing.assert_allclose(o.loc[done, "filled"], o.loc[done, "qty"], rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(case=cases.filter(lambda c: not c.margin))
def test_spot_balances_never_go_negative(case: Case) -> None:
    r, s = case.run()
    cash, pos = ledger(r.fills)
    assert (cash >= -1e-9 * CASH0).all()
    assert (pos >= -1e-9).all()
    assert all(seen[3] >= -1e-9 * CASH0 and seen[4] >= -1e-9 for seen in s.seen)
    assert (r.positions.to_numpy() >= -1e-9).all()


@settings(max_examples=40, deadline=None)
@given(case=cases)
def test_fills_stay_in_their_bar_and_never_on_the_bar_of_placement(case: Case) -> None:
    r, _ = case.run()
    f = r.fills
    bars = case.bars()
    low = bars["low"].to_numpy()[f["bar"]]
    high = bars["high"].to_numpy()[f["bar"]]
    b = case.slippage_bps * 1e-4
    px = f["price"].to_numpy()
    assert (px >= low * (1 - b) * (1 - 1e-12)).all()
    assert (px <= high * (1 + b) * (1 + 1e-12)).all()
    if b == 0:
        assert ((px >= low) & (px <= high)).all()
    placed = r.orders.set_index("order_id")["placed_bar"]
    by_order = f[f["order_id"] >= 0]
    assert (by_order["bar"].to_numpy() > placed.loc[by_order["order_id"]].to_numpy()).all()
    # Liquidations and the end-of-data close are the only fills without an order.
    assert set(f.loc[f["order_id"] < 0, "order_id"]) <= {-1, -2}
    assert (f.loc[f["order_id"] == -1, "liquidation"]).all()


@settings(max_examples=15, deadline=None)
@given(case=cases)
def test_a_rerun_gives_identical_logs(case: Case) -> None:
    first, _ = case.run()
    second, _ = case.run()
    pd.testing.assert_frame_equal(first.orders, second.orders)
    pd.testing.assert_frame_equal(first.fills, second.fills)
    pd.testing.assert_series_equal(first.equity, second.equity)


@settings(max_examples=300, deadline=None)
@given(
    step=st.sampled_from([1e-8, 1e-6, 0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
    units=st.integers(1, 10**6),
    frac=st.sampled_from([0.0, 0.5, 0.4999999, 0.5000001, 0.9999999, 0.123]),
)
def test_rounding_follows_the_decimal_intent(step: float, units: int, frac: float) -> None:
    """Kernels and Instrument (live) round with one rule, and it gives the decimal answer: half
    up to the tick, down to the lot. Up to 10^6 ticks the rule's 1e-9-tick guard is larger than
    float error; far beyond that a price within float error of a half tick may go either way."""
    from simulator.engine import instrument_table
    from simulator.nb.rounding import floor_qty_nb, round_price_nb
    from simulator.state import I_LOT_DEC, I_TICK_DEC

    inst = Instrument(symbol="X", tick=step, lot=step)
    table = instrument_table({"X": inst})[0]
    value = (units + frac) * step
    exact = Decimal(units) + Decimal(repr(frac))
    d_step = Decimal(repr(step))
    half_up = float(exact.to_integral_value(ROUND_HALF_UP) * d_step)
    down = float(exact.to_integral_value(ROUND_FLOOR) * d_step)
    assert round_price_nb(value, step, table[I_TICK_DEC]) == half_up
    assert inst.round_price(value) == half_up
    assert floor_qty_nb(value, step, table[I_LOT_DEC]) == down
    assert inst.floor_qty(value) == down


JIT_CASE = Case(
    seed=20240101,
    n_bars=120,
    walk_seed=7,
    every_bar=True,
    margin=True,
    fees=0.0005,
    slippage_bps=5.0,
    participation=0.002,
    conservative=False,
    lot=0.001,
)


def _write_fills(path: str) -> None:
    """Entry point of the no-JIT subprocess."""
    result, _ = JIT_CASE.run()
    assert len(result.fills) > 20
    result.fills.to_parquet(path)


def test_no_jit_run_gives_the_same_fills_as_the_compiled_kernels(tmp_path: Path) -> None:
    jitted, _ = JIT_CASE.run()
    assert len(jitted.fills) > 20 and jitted.fills["liquidity"].nunique() == 2
    out = tmp_path / "fills.parquet"
    here = Path(__file__).resolve().parent
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(here)!r}, {str(here.parent)!r}]\n"
        "from test_properties import _write_fills\n"
        f"_write_fills({str(out)!r})\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(out), jitted.fills)
