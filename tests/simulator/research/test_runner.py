"""run_sweep: rows equal the engine's own results, ranked, deterministic, saved, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk

from simulator import backtest
from simulator.research import distributed
from simulator.research.runner import run_sweep
from simulator.sweep import sweep
from strategies import SimpleGrid, SmaCross
from tradetower.errors import ConfigError

BARS = random_walk(3_000, seed=7, vol=0.003)
C0 = float(BARS["close"].iloc[0])
BASE = {"high_price": round(C0 * 1.1, 4), "investment": 500.0}
SPACE = ["grid_levels=5:20:5", f"low_price={round(C0 * 0.85, 4)},{round(C0 * 0.92, 4)}"]
SIM = {"fees": 0.001}


def grid_sweep(space: list[str] = SPACE, **kw: Any) -> pd.DataFrame:
    args: dict[str, Any] = {"base": BASE, "progress": False, **SIM, **kw}
    return run_sweep("simple_grid", space, BARS, **args)


def test_each_row_is_the_engine_sweep_of_its_combination_ranked_by_the_objective() -> None:
    table = grid_sweep()
    assert list(table["rank"]) == list(range(1, 9))
    assert list(table["return_pct"]) == sorted(table["return_pct"], reverse=True)
    low = [round(C0 * 0.85, 4), round(C0 * 0.92, 4)]
    direct = sweep(
        SimpleGrid, {"grid_levels": [5, 10, 15, 20], "low_price": low}, BARS, base=BASE, **SIM
    )
    by_combo = table.sort_values("combo").reset_index(drop=True)
    assert list(by_combo["combo"]) == list(range(8))
    pd.testing.assert_frame_equal(
        by_combo.drop(columns=["rank", "combo"]), direct, check_exact=True
    )


def test_a_leading_minus_minimises_and_an_unknown_objective_is_refused() -> None:
    table = grid_sweep(objective="-fees_paid")
    assert list(table["fees_paid"]) == sorted(table["fees_paid"])
    with pytest.raises(ConfigError) as err:
        grid_sweep(objective="sharpe")
    assert str(err.value) == (
        "objective 'sharpe' is not a metric of this sweep (one of: final_equity, return_pct, "
        "max_drawdown_pct, n_fills, n_orders, fees_paid, exposure_pct, grid_cycles; "
        "prefix with '-' to minimise)"
    )


def test_chunking_does_not_change_a_single_value() -> None:
    pd.testing.assert_frame_equal(
        grid_sweep(chunk_size=1), grid_sweep(chunk_size=100), check_exact=True
    )


def test_a_combination_the_model_refuses_is_named_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        grid_sweep(space=["grid_levels=5", "low_price=90,200"], folder=tmp_path / "s")
    assert str(err.value).startswith("combination 1 {'grid_levels': 5, 'low_price': 200.0}: ")
    assert "low_price (200.0) must be below high_price" in str(err.value)
    assert not (tmp_path / "s").exists()


def test_random_and_optuna_sweeps_repeat_exactly_with_the_same_seed() -> None:
    space = ["grid_levels=5:30", f"low_price={C0 * 0.8}:{C0 * 0.95}"]
    for method in ("random", "optuna"):
        first = grid_sweep(space=space, method=method, n_trials=12, seed=5, chunk_size=4)
        again = grid_sweep(space=space, method=method, n_trials=12, seed=5, chunk_size=4)
        other = grid_sweep(space=space, method=method, n_trials=12, seed=6, chunk_size=4)
        pd.testing.assert_frame_equal(first, again, check_exact=True)
        assert len(first) == 12 and sorted(first["combo"]) == list(range(12))
        assert not first["low_price"].equals(other["low_price"])
        assert first["grid_levels"].between(5, 30).all()


def test_optuna_spends_its_later_trials_near_the_best_region() -> None:
    # the objective rewards few levels strongly here: TPE must find and stay near them
    table = grid_sweep(
        space=["grid_levels=3:200", f"low_price={C0 * 0.9}"],
        method="optuna",
        n_trials=40,
        objective="-n_fills",
        chunk_size=4,
    )
    by_trial = table.sort_values("combo")
    early = by_trial["grid_levels"].iloc[:10].median()
    late = by_trial["grid_levels"].iloc[-10:].median()
    assert late < early
    assert table["grid_levels"].iloc[0] <= 10


def test_signal_strategies_run_one_backtest_per_combination() -> None:
    table = run_sweep("sma_cross", ["fast=5,10", "slow=30,60"], BARS, progress=False, cash=10_000.0)
    assert len(table) == 4
    for row in table.itertuples(index=False):
        single = backtest(SmaCross(fast=row.fast, slow=row.slow), BARS, cash=10_000.0).metrics
        assert row.final_equity == single["final_equity"]
        assert row.max_drawdown_pct == single["max_drawdown_pct"]
        assert row.n_fills == single["n_fills"] and row.n_fills > 0


def test_the_folder_holds_results_and_the_sweep_description(tmp_path: Path) -> None:
    table = grid_sweep(folder=tmp_path / "s")
    stored = pd.read_parquet(tmp_path / "s" / "results.parquet")
    assert list(stored["combo"]) == list(range(8))
    pd.testing.assert_frame_equal(
        stored, table.drop(columns="rank").sort_values("combo").reset_index(drop=True)
    )
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert meta["strategy"] == "simple_grid"
    assert meta["params"] == ["grid_levels", "low_price"]
    assert meta["metrics"] == list(stored.columns[3:])
    assert meta["base"] == BASE
    assert meta["space"]["grid_levels"]["values"] == [5, 10, 15, 20]
    assert (meta["method"], meta["seed"], meta["objective"]) == ("grid", 0, "return_pct")
    assert meta["sim"]["fees"] == 0.001
    saved = pd.read_parquet(meta["data"]["path"])
    np.testing.assert_array_equal(saved["close"].to_numpy(), BARS["close"].to_numpy())
    assert meta["data"]["bars"] == 3_000


def test_a_folder_of_another_sweep_is_not_resumed_into(tmp_path: Path) -> None:
    grid_sweep(folder=tmp_path / "s")
    with pytest.raises(ConfigError, match="holds a different sweep \\('space' differs\\)"):
        grid_sweep(folder=tmp_path / "s", space=["grid_levels=5,6", "low_price=90"])
    fresh = grid_sweep(
        folder=tmp_path / "s", space=["grid_levels=5,6", "low_price=90"], resume=False
    )
    assert len(pd.read_parquet(tmp_path / "s" / "results.parquet")) == len(fresh) == 2


def test_a_killed_optuna_sweep_resumes_into_the_same_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = ["grid_levels=5:40", f"low_price={C0 * 0.8}:{C0 * 0.95}"]
    args: dict[str, Any] = {"space": space, "method": "optuna", "n_trials": 16, "chunk_size": 4}
    whole = grid_sweep(**args)
    real_run = distributed.InProcess.run
    batches = []

    def dies_on_the_third_batch(self: Any, job: Any, chunks: Any) -> Any:
        batches.append(chunks)
        if len(batches) == 3:
            raise KeyboardInterrupt
        return real_run(self, job, chunks)

    monkeypatch.setattr(distributed.InProcess, "run", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        grid_sweep(folder=tmp_path / "s", **args)
    assert len(pd.read_parquet(tmp_path / "s" / "results.parquet")) == 8
    monkeypatch.setattr(distributed.InProcess, "run", real_run)
    resumed = grid_sweep(folder=tmp_path / "s", **args)
    assert (resumed.attrs["reused"], resumed.attrs["ran"]) == (8, 8)
    pd.testing.assert_frame_equal(resumed, whole, check_exact=True)
