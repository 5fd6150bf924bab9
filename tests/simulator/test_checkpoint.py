"""A backtest paused at a bar, saved, loaded and resumed equals the uninterrupted run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
from golden_cases import CASES, DATA, Case, perp, spot

from simulator import backtest
from simulator import state as S
from simulator.checkpoint import Checkpoint, backtest_until, resume
from simulator.result import BacktestResult
from strategies import strategy_class
from tradetower.errors import ConfigError, DataValidationError
from tradetower.strategy import Strategy

BY_NAME = {c.name: c for c in CASES}


def _setup(case: Case) -> tuple[Any, dict[str, pd.DataFrame], dict[str, Any], dict[str, Any]]:
    bars = pd.read_parquet(DATA / case.data)
    inst = perp(case.leverage) if case.leverage else spot()
    cls = strategy_class(case.strategy)
    settings = dict(case.settings)
    return cls, {inst.symbol: bars}, {inst.symbol: inst}, settings


def _same(a: BacktestResult, b: BacktestResult) -> None:
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.fills, b.fills)
    pd.testing.assert_series_equal(a.equity, b.equity)
    ma = {k: v for k, v in a.metrics.items() if k != "elapsed_ms"}
    mb = {k: v for k, v in b.metrics.items() if k != "elapsed_ms"}
    assert ma == mb


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_pause_save_load_resume_equals_the_uninterrupted_run(name: str, tmp_path: Path) -> None:
    case = BY_NAME[name]
    cls, data, inst, settings = _setup(case)
    full = backtest(cls(cls.Config.parse(case.config)), data, instrument=inst, **settings)
    n = len(next(iter(data.values())))
    paused = backtest_until(
        cls(cls.Config.parse(case.config)), data, n // 2, instrument=inst, **settings
    )
    assert paused.bar == n // 2
    saved = paused.save(tmp_path / f"{name}.npz")
    loaded = Checkpoint.load(saved)
    # Fills made before the pause are all on earlier bars; the rest come after the resume.
    fills_before = int(loaded.venue["counters"][4])
    assert fills_before == int((full.fills["bar"] < n // 2).sum())
    resumed = resume(loaded, cls(cls.Config.parse(case.config)), data)
    assert isinstance(resumed, BacktestResult)
    _same(full, resumed)


@pytest.mark.parametrize("name", ["grid", "combo"])
def test_a_checkpoint_without_the_armed_trigger_list_still_resumes_exactly(
    name: str, tmp_path: Path
) -> None:
    """Checkpoints written before the simulator kept its list of armed triggers lack it; the
    list is rebuilt from the trigger log and the run resumes as if never paused."""
    case = BY_NAME[name]
    cls, data, inst, settings = _setup(case)
    full = backtest(cls(cls.Config.parse(case.config)), data, instrument=inst, **settings)
    n = len(next(iter(data.values())))
    paused = backtest_until(
        cls(cls.Config.parse(case.config)), data, n // 2, instrument=inst, **settings
    )
    assert int(paused.venue["counters"][S.C_N_ACTIVE_TRIG]) > 0  # the case has armed triggers
    del paused.venue["trig_live"]
    loaded = Checkpoint.load(paused.save(tmp_path / "old.npz"))
    assert "trig_live" not in loaded.venue
    _same(full, resume(loaded, cls(cls.Config.parse(case.config)), data))


@pytest.mark.parametrize("kept", ["fewer", "memo"])
def test_a_checkpoint_from_an_older_loop_still_resumes_exactly(tmp_path: Path, kept: str) -> None:
    """Checkpoints written by older loops hold other counters: fewer (before the jump to the
    next signal), or two more where the cursor now is (a memo of bar numbers, far past the
    list of signal bars). The jump starts from the first signal and the run resumes as if
    never paused."""
    case = BY_NAME["sma_cross"]
    cls, data, inst, settings = _setup(case)
    full = backtest(cls(cls.Config.parse(case.config)), data, instrument=inst, **settings)
    n = len(next(iter(data.values())))
    paused = backtest_until(
        cls(cls.Config.parse(case.config)), data, n // 2, instrument=inst, **settings
    )
    counters = paused.venue["counters"][: S.C_SIG_CURSOR]
    if kept == "memo":
        counters = np.concatenate([counters, np.array([n // 2 + 7, n // 2 + 40], np.int64)])
    paused.venue["counters"] = counters
    loaded = Checkpoint.load(paused.save(tmp_path / "old.npz"))
    assert loaded.venue["counters"].shape[0] != S.N_COUNTERS
    _same(full, resume(loaded, cls(cls.Config.parse(case.config)), data))


def test_a_run_can_pause_twice_and_on_the_python_driver(tmp_path: Path) -> None:
    case = BY_NAME["grid"]
    cls, data, inst, settings = _setup(case)
    full = backtest(cls(cls.Config.parse(case.config)), data, instrument=inst, **settings)
    first = backtest_until(
        cls(cls.Config.parse(case.config)),
        data,
        "2018-01-15",
        instrument=inst,
        mode="python",
        **settings,
    )
    assert first.time == "2018-01-15 00:00:00+00:00"  # the first bar at or after `until`
    second = resume(first, cls(cls.Config.parse(case.config)), data, until=3000)
    assert isinstance(second, Checkpoint) and second.bar == 3000
    second = Checkpoint.load(second.save(tmp_path / "second.npz"))
    end = resume(second, cls(cls.Config.parse(case.config)), data, mode="compiled")
    assert isinstance(end, BacktestResult)
    _same(full, end)


def test_a_checkpoint_refuses_other_data_other_parameters_and_python_strategies() -> None:
    case = BY_NAME["dca"]
    cls, data, inst, settings = _setup(case)
    paused = backtest_until(
        cls(cls.Config.parse(case.config)), data, 100, instrument=inst, **settings
    )
    sym, bars = next(iter(data.items()))
    shifted = {sym: bars.assign(close=bars["close"] * 1.0 + 0.0, high=bars["high"] * 1.01)}
    with pytest.raises(DataValidationError, match="bars differ"):
        resume(paused, cls(cls.Config.parse(case.config)), shifted)
    other = {**case.config, "take_profit_pct": 2}
    with pytest.raises(ConfigError, match="parameters differ"):
        resume(paused, cls(cls.Config.parse(other)), data)
    with pytest.raises(ConfigError, match="only strategies with a compiled kernel"):
        backtest_until(Strategy(), data, 10, instrument=inst, **settings)
    with pytest.raises(ConfigError, match="must fall inside the data"):
        backtest_until(cls(cls.Config.parse(case.config)), data, 10**9, instrument=inst)


def test_a_damaged_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataValidationError, match="not a TradeTower checkpoint"):
        Checkpoint.load(bad)
    with pytest.raises(DataValidationError, match="no such checkpoint"):
        Checkpoint.load(tmp_path / "missing.npz")
