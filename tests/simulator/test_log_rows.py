"""A signal strategy's order and fill logs start at about a row per signal, within a bound."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
from golden_cases import CASES, DATA, perp, spot

from simulator import engine as E
from simulator import state as S
from simulator.checkpoint import Checkpoint, backtest_until
from simulator.nb.loop import needs_growth_nb
from simulator.nb.signal_bars import signal_bars_nb
from strategies import SmaCross, strategy_class


def test_an_sma_run_never_grows_its_presized_logs(eth_btc: pd.DataFrame) -> None:
    run = E.prepare_run(
        SmaCross(fast=5, slow=20), eth_btc, None, None, None, "ASSET", None, {"capacity": 16}
    )
    rows = run.driver.state.orders.shape[0]
    signals = int(np.count_nonzero(run.driver.state.signals))
    assert rows >= signals > 16
    run.drive("compiled")
    st = run.driver.state
    assert 0 < st.counters[S.C_N_ORDERS] <= signals
    assert st.orders.shape[0] == rows and st.fills.shape[0] == rows  # no doubling on the way


def test_a_code_on_every_bar_does_not_size_a_log_per_bar() -> None:
    dense = signal_bars_nb(np.ones((2_000_000, 1), dtype=np.int64))
    assert E._log_rows(1024, dense) == E.MAX_PRESIZED_ROWS
    assert E._log_rows(1024, signal_bars_nb(np.zeros((500, 1), dtype=np.int64))) == 1024
    assert E._log_rows(1024, None) == 1024
    assert E._log_rows(500_000, dense) == 500_000  # an explicit capacity still wins
    some = np.zeros((10_000, 1), dtype=np.int64)
    some[::10] = 1
    assert E._log_rows(16, signal_bars_nb(some)) == 1_000 + 250 + 256


@pytest.mark.parametrize("max_actions", [8, 256, 5_000])
def test_a_fresh_state_needs_no_growth_before_its_first_event(max_actions: int) -> None:
    """Every log starts with the headroom the loop checks before each event, so no run stops
    to grow its logs before its first event; one that arms no trigger and sets no timer never
    grows those two logs at all."""
    run = E.prepare_run(
        SmaCross(fast=5, slow=20),
        random_walk(2_000, seed=4),
        None,
        None,
        None,
        "ASSET",
        None,
        {"max_actions": max_actions},
    )
    st = run.driver.state
    assert not needs_growth_nb(st)
    shapes = [st.trig.shape, st.timers.shape]
    run.drive("compiled")
    st = run.driver.state
    assert st.counters[S.C_N_ORDERS] > 20
    assert [st.trig.shape, st.timers.shape] == shapes


def _poisoned(allocate: Callable[..., S.SimState]) -> Callable[..., S.SimState]:
    """``allocate``, with every row of every log set to garbage before the run starts."""

    def wrapped(*args: Any, **kwargs: Any) -> S.SimState:
        st = allocate(*args, **kwargs)
        for log in (st.orders, st.fills, st.trig):
            log[:] = np.nan
        st.timers[:] = -7
        st.active[:] = 1 << 40
        st.trig_live[:] = 1 << 40
        return st

    return wrapped


def _run(name: str, mode: str, **settings: Any) -> Any:
    return next(c for c in CASES if c.name == name).run(mode=mode, **settings)


@pytest.mark.parametrize("capacity", [None, 16])
@pytest.mark.parametrize("mode", ["compiled", "python"])
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_no_run_reads_a_log_row_it_has_not_written(
    name: str, mode: str, capacity: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh logs are not cleared (``reset_nb``), nor are the rows a log gains when it grows:
    every built-in bot, on both drivers, gives the same result when every row starts as
    garbage, so none reads a row before writing it. With ``capacity=16`` the logs start
    small and grow (leaving the compiled loop and re-entering it) many times in the run."""
    clean = _run(name, mode)
    monkeypatch.setattr(S, "allocate", _poisoned(S.allocate))
    dirty = _run(name, mode) if capacity is None else _run(name, mode, capacity=capacity)
    pd.testing.assert_frame_equal(clean.orders, dirty.orders)
    pd.testing.assert_frame_equal(clean.fills, dirty.fills)
    pd.testing.assert_series_equal(clean.equity, dirty.equity)
    assert {k: v for k, v in clean.metrics.items() if k != "elapsed_ms"} == {
        k: v for k, v in dirty.metrics.items() if k != "elapsed_ms"
    }
    assert len(clean.fills) > 0


def test_a_checkpoint_keeps_zeros_past_each_logs_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = next(c for c in CASES if c.strategy == "grid")
    monkeypatch.setattr(S, "allocate", _poisoned(S.allocate))
    bars = pd.read_parquet(DATA / case.data)
    inst = perp(case.leverage) if case.leverage else spot()
    cls = strategy_class(case.strategy)
    paused = backtest_until(
        cls(cls.Config.parse(case.config)),
        {inst.symbol: bars},
        len(bars) // 2,
        instrument={inst.symbol: inst},
        **case.settings,
    )
    venue = Checkpoint.load(paused.save(tmp_path / "c.npz")).venue
    counters = venue["counters"]
    for log, counter in (("orders", S.C_N_ORDERS), ("fills", S.C_N_FILLS), ("trig", S.C_N_TRIG)):
        used = int(counters[counter])
        assert used > 0 or log == "trig"
        assert np.all(venue[log][used:] == 0), log
        assert not np.isnan(venue[log][:used]).all(axis=1).any(), log  # the used rows are real
    assert np.all(venue["timers"][int(counters[S.C_N_TIMERS]) :] == 0)
    assert np.all(venue["active"][int(counters[S.C_N_ACTIVE]) :] == 0)
