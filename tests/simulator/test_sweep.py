"""A sweep's row equals a backtest of the same combination; errors name the combination."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk

from simulator import backtest
from simulator.sweep import combinations, sweep
from strategies import SimpleGrid, SmaCross
from tradetower.errors import ConfigError

BARS = random_walk(4_000, seed=7, vol=0.003)
C0 = float(BARS["close"].iloc[0])
GRID = {"grid_levels": [5, 12], "low_price": [C0 * 0.85, C0 * 0.92], "high_price": [C0 * 1.1]}


def test_combinations_is_the_cartesian_product() -> None:
    combos = combinations({"a": [1, 2], "b": [3, 4, 5]})
    assert len(combos) == 6 and {"a": 2, "b": 5} in combos
    assert combinations([{"a": 1}]) == [{"a": 1}]


def test_each_row_equals_a_backtest_of_that_combination() -> None:
    table = sweep(SimpleGrid, GRID, BARS, base={"investment": 500}, fees=0.001)
    assert len(table) == 4
    for row in table.itertuples(index=False):
        single = backtest(
            SimpleGrid(
                grid_levels=row.grid_levels,
                low_price=row.low_price,
                high_price=row.high_price,
                investment=500,
            ),
            BARS,
            fees=0.001,
        )
        m = single.metrics
        assert row.final_equity == pytest.approx(m["final_equity"], rel=1e-12)
        assert row.max_drawdown_pct == pytest.approx(m["max_drawdown_pct"], rel=1e-9)
        assert row.exposure_pct == pytest.approx(m["exposure_pct"], rel=1e-12)
        assert row.n_fills == m["n_fills"] and row.n_orders == m["n_orders"]
        assert row.fees_paid == pytest.approx(m["fees_paid"], rel=1e-12)
        assert row.grid_cycles == m["grid_cycles"]
    assert table["n_fills"].min() > 0


def test_serial_and_parallel_sweeps_agree_and_keep_order() -> None:
    par = sweep(SimpleGrid, GRID, BARS, base={"investment": 500}, fees=0.001, parallel=True)
    ser = sweep(SimpleGrid, GRID, BARS, base={"investment": 500}, fees=0.001, parallel=False)
    np.testing.assert_array_equal(par.to_numpy(float), ser.to_numpy(float))
    assert list(par["grid_levels"]) == [5, 5, 12, 12]


def test_an_invalid_combination_is_refused_before_the_sweep_and_named() -> None:
    bad = {"grid_levels": [5], "low_price": [C0 * 1.2], "high_price": [C0 * 1.1]}
    with pytest.raises(ConfigError, match="combination 0"):
        sweep(SimpleGrid, bad, BARS, base={"investment": 500})


def test_strategies_with_parameter_dependent_signals_are_pointed_to_backtest() -> None:
    with pytest.raises(ConfigError, match="use backtest"):
        sweep(SmaCross, {"fast": [5], "slow": [20]}, BARS)


def test_runs_sharing_one_reset_state_equal_fresh_runs() -> None:
    """One thread runs every combination on one state, reset between runs and grown from a
    tiny capacity by the first: each row still equals its own freshly allocated run."""
    shared = sweep(
        SimpleGrid, GRID, BARS, base={"investment": 500}, fees=0.001, threads=1, capacity=4
    )
    fresh = sweep(SimpleGrid, GRID, BARS, base={"investment": 500}, fees=0.001, parallel=False)
    np.testing.assert_array_equal(shared.to_numpy(float), fresh.to_numpy(float))
    assert shared["n_orders"].min() > 4  # every run outgrew the 4 rows it started with
