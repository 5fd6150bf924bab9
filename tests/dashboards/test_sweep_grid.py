"""Heatmap cells and parallel-coordinate axes from a sweep table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboards.sweep_grid import (
    ANY,
    axis_labels,
    heatmap_cells,
    normalised,
    params_of,
    split_columns,
)
from tradetower.errors import ConfigError

TABLE = pd.DataFrame(
    {
        "combo": range(8),
        "levels": [10, 10, 20, 20, 10, 10, 20, 20],
        "low": [0.07, 0.08, 0.07, 0.08, 0.07, 0.08, 0.07, 0.08],
        "trail": [True, True, True, True, False, False, False, False],
        "final_equity": [100.0, 110.0, 120.0, 130.0, 105.0, 90.0, np.nan, 140.0],
    }
)


def test_with_the_other_parameter_fixed_each_cell_is_one_row() -> None:
    cells, xs, ys = heatmap_cells(TABLE, "levels", "low", "final_equity", {"trail": False})
    assert xs == ["10", "20"] and ys == ["0.07", "0.08"]
    got = {(r.levels, r.low): (r.final_equity, r.row, r.count) for r in cells.itertuples()}
    assert got[("10", "0.07")] == (105.0, 4, 1)
    assert got[("10", "0.08")] == (90.0, 5, 1)
    assert got[("20", "0.08")] == (140.0, 7, 1)
    assert np.isnan(got[("20", "0.07")][0]) and got[("20", "0.07")][1:] == (6, 1)


def test_a_free_parameter_keeps_the_highest_row_of_each_cell() -> None:
    cells, _, _ = heatmap_cells(TABLE, "levels", "low", "final_equity", {"trail": ANY})
    got = {(r.levels, r.low): (r.final_equity, r.row, r.count) for r in cells.itertuples()}
    assert got == {
        ("10", "0.07"): (105.0, 4, 2),
        ("10", "0.08"): (110.0, 1, 2),
        ("20", "0.07"): (120.0, 2, 2),  # NaN never wins a cell
        ("20", "0.08"): (140.0, 7, 2),
    }
    assert params_of(TABLE, 7, ["levels", "low", "trail"]) == {
        "levels": 20,
        "low": 0.08,
        "trail": False,
    }
    assert type(params_of(TABLE, 7, ["levels"])["levels"]) is int
    with pytest.raises(ConfigError, match="pick two different parameters"):
        heatmap_cells(TABLE, "low", "low", "final_equity")


def test_axis_labels_sort_numbers_and_bin_many_values() -> None:
    labels, order = axis_labels(pd.Series([100, 20, 3, 20]))
    assert order == ["3", "20", "100"] and list(labels) == ["100", "20", "3", "20"]
    _, order = axis_labels(pd.Series([0.1, 0.1000000000001]))
    assert order == ["0.1", "0.1000000000001"]
    many = pd.Series(np.linspace(0.0, 1.0, 101))
    labels, order = axis_labels(many)
    assert len(order) == 10 and order[0] == "0 – 0.1" and order[-1] == "0.9 – 1"
    assert labels.iloc[0] == "0 – 0.1" and labels.iloc[-1] == "0.9 – 1"
    assert labels.value_counts().sum() == 101


def test_columns_are_split_into_parameters_and_metrics() -> None:
    assert split_columns(TABLE, ["levels", "low"], ["final_equity"]) == (
        ["levels", "low"],
        ["final_equity"],
    )
    # a frame as simulator.sweep.sweep returns it: the metric names come from the kernel module
    assert split_columns(TABLE) == (["levels", "low", "trail"], ["final_equity"])
    with pytest.raises(ConfigError, match=r"no column\(s\) sharpe in the sweep table"):
        split_columns(TABLE, ["levels"], ["sharpe"])


def test_parallel_axes_are_scaled_to_their_own_range() -> None:
    scaled = normalised(TABLE, ["levels", "trail", "final_equity"])
    assert list(scaled["levels"]) == [0, 0, 1, 1, 0, 0, 1, 1]
    assert list(scaled["trail"]) == [1, 1, 1, 1, 0, 0, 0, 0]
    assert scaled["final_equity"].iloc[0] == pytest.approx(0.2)
    assert scaled["final_equity"].iloc[7] == 1.0
    assert list(normalised(TABLE.assign(c=3), ["c"])["c"]) == [0.5] * 8
