"""A kernel asking for more action rows in one event than ``max_actions`` stops the run with an
error naming the setting; nothing is written past the buffer (it used to corrupt memory)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_walk

from simulator import backtest
from simulator.driver import StrategyError
from simulator.sweep import sweep
from strategies import SimpleGrid
from tradetower import kernel_abi as K
from tradetower.kernel_tools import place_nb, set_timer_nb

BARS = random_walk(600, seed=3, vol=0.003)
C0 = float(BARS["close"].iloc[0])
BAND = {"low_price": C0 * 0.9, "high_price": C0 * 1.1}


def test_the_helpers_count_rows_they_have_no_room_for_without_writing_them() -> None:
    buffer = np.full((4, K.N_ACTION), 7.0)
    actions = buffer[:2]
    n = place_nb(actions, 0, 0, 1.0, K.LIMIT, 100.0, 1.0, 5.0, False, False)
    n = place_nb(actions, n, 0, 1.0, K.LIMIT, 99.0, 1.0, 6.0, False, False)
    n = set_timer_nb(actions, n, 1_000.0, 7.0)
    assert n == 3
    assert actions[1, K.A_PRICE] == 99.0
    assert (buffer[2:] == 7.0).all()  # the rows past the buffer are untouched


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_a_start_placing_more_orders_than_max_actions_stops_the_run(mode: str) -> None:
    grid = SimpleGrid(grid_levels=20, investment=500, **BAND)  # 19 orders at its start
    with pytest.raises(StrategyError, match="max_actions=8"):
        backtest(grid, BARS, fees=0.001, max_actions=8, mode=mode)


def test_the_same_grid_runs_with_room_for_its_orders() -> None:
    small = backtest(SimpleGrid(grid_levels=20, investment=500, **BAND), BARS, max_actions=32)
    assert small.metrics["n_orders"] >= 19


def test_a_sweep_marks_the_combination_that_overflowed_and_runs_the_others() -> None:
    table = sweep(
        SimpleGrid,
        {"grid_levels": [5, 20], **{k: [v] for k, v in BAND.items()}},
        BARS,
        base={"investment": 500},
        max_actions=8,
    )
    fine, overflowed = table.iloc[0], table.iloc[1]
    assert fine["grid_levels"] == 5 and fine["n_orders"] >= 4
    assert overflowed["grid_levels"] == 20 and np.isnan(overflowed["final_equity"])
    assert np.isnan(overflowed["n_orders"])
