"""Walk-forward: exact fold windows; each fold's pick is the in-sample best, judged after it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import random_walk

from simulator.research.runner import run_sweep
from simulator.research.walkforward import Fold, k_folds, rolling_folds, walk_forward
from tradetower.errors import ConfigError

BARS = random_walk(3_000, seed=11, vol=0.003)
C0 = float(BARS["close"].iloc[0])
BASE = {"high_price": C0 * 1.15, "investment": 500.0}
SPACE = ["grid_levels=4:24:4", f"low_price={C0 * 0.8},{C0 * 0.9}"]


def test_k_folds_cut_the_bars_into_k_plus_one_blocks() -> None:
    assert k_folds(10, 3) == [Fold(0, 0, 2, 2, 5), Fold(1, 2, 5, 5, 7), Fold(2, 5, 7, 7, 10)]
    assert k_folds(10, 3, anchored=True) == [
        Fold(0, 0, 2, 2, 5),
        Fold(1, 0, 5, 5, 7),
        Fold(2, 0, 7, 7, 10),
    ]
    with pytest.raises(ConfigError, match="folds: 7 bars are too few for 3 folds"):
        k_folds(7, 3)


def test_rolling_folds_move_by_the_step_while_the_test_window_fits() -> None:
    assert rolling_folds(100, 30, 20) == [
        Fold(0, 0, 30, 30, 50),
        Fold(1, 20, 50, 50, 70),
        Fold(2, 40, 70, 70, 90),
    ]
    assert [f.is_start for f in rolling_folds(100, 30, 20, step=10)] == [0, 10, 20, 30, 40, 50]
    with pytest.raises(ConfigError, match=r"train_bars \+ test_bars \(120\) exceed the 100 bars"):
        rolling_folds(100, 70, 50)


def test_each_fold_takes_the_in_sample_best_and_reports_it_out_of_sample(tmp_path: Path) -> None:
    table = walk_forward(
        "simple_grid",
        SPACE,
        BARS,
        folds=2,
        base=BASE,
        folder=tmp_path / "wf",
        progress=False,
        fees=0.001,
    )
    assert list(table[["is_start", "is_end", "oos_start", "oos_end"]].itertuples(index=False)) == [
        (0, 1000, 1000, 2000),
        (1000, 2000, 2000, 3000),
    ]
    assert table["oos_from"].iloc[1] == BARS.index[2000]
    assert table["is_to"].iloc[1] == BARS.index[1999]
    for fold in table.itertuples(index=False):
        inside = run_sweep(
            "simple_grid",
            SPACE,
            BARS.iloc[fold.is_start : fold.is_end],
            base=BASE,
            progress=False,
            fees=0.001,
        )
        best = inside.iloc[0]
        assert (fold.best_combo, fold.grid_levels, fold.low_price) == (
            best["combo"],
            best["grid_levels"],
            best["low_price"],
        )
        assert fold.is_return_pct == best["return_pct"]
        after = run_sweep(
            "simple_grid",
            [f"grid_levels={fold.grid_levels}", f"low_price={fold.low_price!r}"],
            BARS.iloc[fold.oos_start : fold.oos_end],
            base=BASE,
            progress=False,
            fees=0.001,
        ).iloc[0]
        assert fold.oos_return_pct == after["return_pct"]
        assert fold.oos_n_fills == after["n_fills"]
    assert table["grid_levels"].dtype == "int64"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "wf" / "walkforward.parquet"), table)
    assert (tmp_path / "wf" / "fold-001" / "results.parquet").exists()


def test_walk_forward_needs_folds_or_windows() -> None:
    with pytest.raises(ConfigError, match="give either folds, or train_bars and test_bars"):
        walk_forward("simple_grid", SPACE, BARS, base=BASE)
