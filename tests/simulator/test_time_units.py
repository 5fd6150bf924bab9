"""The simulator reads bar times in the data's own unit and converts one only when it needs it
(``simulator.nb.times``): a run gives the same events, times and results whatever the unit of
its index, and every time it reports is the floor in milliseconds that pandas gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk
from hypothesis import given
from hypothesis import strategies as st

from simulator import backtest
from simulator import state as S
from simulator.nb.times import bar_ms_nb, ticks_upto_ms_nb
from strategies.twap import Twap
from tradetower import kernel_abi as K
from tradetower.domain.bars import MarketData
from tradetower.risk import RiskConfig
from tradetower.strategy import Event, Strategy, StrategyContext

UNITS = ("s", "ms", "us", "ns")
OFFSET = pd.Timedelta(microseconds=250_999)  # bars off the whole second: the floor matters


def bars(n: int, unit: str, offset: pd.Timedelta = OFFSET) -> pd.DataFrame:
    frame = random_walk(n, seed=3)
    frame.index = (frame.index + (pd.Timedelta(0) if unit == "s" else offset)).as_unit(unit)
    return frame


class Clock(Strategy):
    """Sets timers on the edges of bars' milliseconds and buys on one; records what it saw."""

    name = "clock"

    def __init__(self, at: list[int]) -> None:
        self.at = at
        self.seen: list[tuple[int, int, int, int]] = []  # (tag, bar, event ms, ctx.now_ms)

    def on_start(self, ctx: StrategyContext) -> None:
        for tag, ms in enumerate(self.at):
            ctx.set_timer(ms, tag=tag)

    def on_timer(self, ctx: StrategyContext, event: Event) -> None:
        self.seen.append((event.tag, event.bar, event.time_ms, ctx.now_ms))
        if event.tag == 1:
            ctx.place(K.BUY, 1.0)


@pytest.mark.parametrize("unit", UNITS)
def test_timers_fire_on_the_bar_holding_their_time_in_every_unit(unit: str) -> None:
    frame = bars(40, unit)
    ms = frame.index.as_unit("ms").asi8  # pandas' own floor
    # the last ms of bar 5, the first of bar 9, one before bar 20's first, bar 30's first
    at = [int(ms[6]) - 1, int(ms[9]), int(ms[20]) - 1, int(ms[30])]
    clock = Clock(at)
    r = backtest(clock, frame, cash=10_000.0, mode="python", close_at_end=False)
    assert clock.seen == [
        (0, 5, ms[5], ms[5]),
        (1, 9, ms[9], ms[9]),
        (2, 19, ms[19], ms[19]),
        (3, 30, ms[30], ms[30]),
    ]
    assert r.fills["bar"].tolist() == [10]


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_a_timer_bot_with_a_daily_risk_rule_runs_the_same_in_every_unit(mode: str) -> None:
    """TWAP slices on timers; the daily loss rule reads each bar's time for its UTC day."""
    results = []
    for unit in UNITS:
        bot = Twap(direction="BUY", total_amount=50.0, duration=600, frequency=60)
        risk = RiskConfig(daily_loss_limit=25.0)
        frame = bars(3 * 1440, unit, offset=pd.Timedelta(0))
        results.append(backtest(bot, frame, cash=10_000.0, mode=mode, risk=risk))
    first = results[0]
    assert len(first.fills) > 10 and len(first.risk_events) > 0
    for other in results[1:]:
        for frame in ("fills", "orders", "risk_events"):  # timestamps keep the unit
            pd.testing.assert_frame_equal(
                _in_ns(getattr(other, frame)), _in_ns(getattr(first, frame))
            )
        assert {k: v for k, v in other.metrics.items() if k != "elapsed_ms"} == {
            k: v for k, v in first.metrics.items() if k != "elapsed_ms"
        }


def _in_ns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(
        lambda c: c.dt.as_unit("ns") if isinstance(c.dtype, pd.DatetimeTZDtype) else c
    )


def test_the_market_gives_its_ticks_and_scale_for_every_unit() -> None:
    for unit in UNITS:
        market = MarketData.coerce(bars(5, unit))
        mul, div = market.tick_scale
        np.testing.assert_array_equal(market.ticks * mul // div, market.time_ms)
        assert market.bar_time_ms(-1) == int(market.time_ms[-1])
        assert np.shares_memory(market.ticks, market.index.asi8)


def _state(times: np.ndarray, scale: tuple[int, int]) -> S.SimState:
    return S.allocate(
        np.zeros((len(times), 1, 5)),
        times,
        np.zeros((1, S.N_INST)),
        np.zeros(S.N_PARAMS),
        time_scale=scale,
    )


PER_MS = {"s": 1, "ms": 1, "us": 1_000, "ns": 1_000_000}  # ticks per ms (seconds: 1 per 1000)


@given(
    ms=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=30),
    frac=st.integers(0, 999_999),
    unit=st.sampled_from(UNITS),
    due=st.integers(-(10**12), 10**12),
)
def test_ticks_up_to_a_time_are_exactly_the_bars_at_or_before_it(
    ms: list[int], frac: int, unit: str, due: int
) -> None:
    """Any timeline (before 1970 too, off the millisecond in finer units): each bar's ms is
    pandas' floor, and the ticks up to a time hold exactly the bars whose ms is at most it."""
    base = np.sort(np.array(ms, dtype=np.int64))
    times = base // 1000 if unit == "s" else base * PER_MS[unit] + frac % PER_MS[unit]
    scale = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 10**6)}[unit]
    state = _state(times, scale)
    floor = pd.DatetimeIndex(times.view(f"M8[{unit}]")).as_unit("ms").asi8
    assert [bar_ms_nb(state, t) for t in range(len(times))] == floor.tolist()
    bound = ticks_upto_ms_nb(state, due)
    assert int(np.searchsorted(times, bound, side="right")) == int((floor <= due).sum())
    assert ticks_upto_ms_nb(state, S.NO_TIMER) == np.iinfo(np.int64).max
