"""The store reads back what ``BacktestResult.save`` and the sweep runner write."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from dash_data import SMA_RUN, SWEEP_GRID, SWEEP_METRICS, SYMBOL, bars, grid_run, write_runs
from dash_data import write_sweep as write_sweep_folder
from pandas.testing import assert_frame_equal, assert_series_equal

from dashboards.store import RunStore, data_sources, load_bars, load_result, load_sweep
from tradetower.errors import ConfigError, DataValidationError


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("runs")
    return folder, write_runs(folder)


def test_a_saved_run_loads_back_equal_to_the_result(runs: tuple[Path, dict]) -> None:
    folder, results = runs
    original = results["grid-20"]
    loaded = load_result(folder / "grid-20")
    assert loaded.strategy == "grid" and loaded.symbols == (SYMBOL,)
    assert loaded.params == original.params
    assert loaded.metrics == json.loads(json.dumps(original.metrics))
    assert_frame_equal(loaded.orders, original.orders)
    assert_frame_equal(loaded.fills, original.fills)
    assert_frame_equal(loaded.trades, original.trades)  # durations back as timedeltas
    assert_series_equal(loaded.equity, original.equity, check_names=False, check_freq=False)
    assert_frame_equal(loaded.positions, original.positions, check_freq=False)
    assert len(loaded.trades) == original.metrics["n_trades"] > 0


def test_recorded_bars_are_read_back(runs: tuple[Path, dict]) -> None:
    folder, _ = runs
    loaded = load_result(folder / "grid-20")
    got = load_bars(loaded, folder / "grid-20")
    assert list(got) == [SYMBOL]
    assert_frame_equal(got[SYMBOL], bars())
    assert load_bars(load_result(folder / SMA_RUN)) == {}


def test_data_source_forms(runs: tuple[Path, dict]) -> None:
    folder, _ = runs
    result = load_result(folder / SMA_RUN)
    for recorded, expected in (
        (None, {}),
        ("a.parquet", {SYMBOL: {"path": "a.parquet"}}),
        ({"path": "a.parquet"}, {SYMBOL: {"path": "a.parquet"}}),
        ({SYMBOL: {"path": "b.csv"}}, {SYMBOL: {"path": "b.csv"}}),
        ({SYMBOL: "c.csv"}, {SYMBOL: {"path": "c.csv"}}),
    ):
        result.config["data"] = recorded
        assert data_sources(result) == expected
    result.config["data"] = 5
    with pytest.raises(DataValidationError, match=r"config\.data: expected a mapping, got int"):
        data_sources(result)


def test_a_relative_bars_path_is_found_inside_the_run_folder(
    runs: tuple[Path, dict], tmp_path: Path
) -> None:
    folder, _ = runs
    run = tmp_path / "copy"
    shutil.copytree(folder / SMA_RUN, run)
    bars().to_parquet(run / "bars.parquet")
    result = load_result(run)
    result.config["data"] = {SYMBOL: {"path": "bars.parquet"}}
    assert_frame_equal(load_bars(result, run)[SYMBOL], bars(), check_freq=False)
    result.config["data"] = {SYMBOL: {"path": "gone.parquet"}}
    with pytest.raises(DataValidationError, match=r"gone\.parquet: no such file"):
        load_bars(result, run)


def test_a_folder_that_is_not_a_run_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=f"{tmp_path / 'nope'}: no such folder"):
        load_result(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "result.json").write_text("{}")
    with pytest.raises(DataValidationError, match=r"not a saved backtest \(missing orders"):
        load_result(tmp_path / "half")


def test_a_broken_result_json_is_named(runs: tuple[Path, dict], tmp_path: Path) -> None:
    folder, _ = runs
    shutil.copytree(folder / "grid-10", tmp_path / "r")
    (tmp_path / "r" / "result.json").write_text("{not json")
    with pytest.raises(DataValidationError, match=r"result\.json: cannot be read as JSON"):
        load_result(tmp_path / "r")
    (tmp_path / "r" / "result.json").write_text('{"strategy": "grid"}')
    with pytest.raises(DataValidationError, match="missing 'metrics'"):
        load_result(tmp_path / "r")


def test_a_sweep_folder_loads(tmp_path: Path) -> None:
    table = write_sweep_folder(tmp_path / "s")
    record = load_sweep(tmp_path / "s")
    assert record.name == "s" and record.strategy == "grid"
    assert record.params == list(SWEEP_GRID) and record.metrics == SWEEP_METRICS
    assert record.base == {"high_price": 0.11, "investment": 1000.0}
    assert record.sim == {"fees": 0.001, "symbol": SYMBOL, "instrument": None}
    assert_frame_equal(record.frame, table)
    assert len(record.frame) == 12


def test_a_sweep_naming_a_missing_column_is_refused(tmp_path: Path) -> None:
    write_sweep_folder(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    meta["metrics"].append("sharpe")
    (tmp_path / "s" / "sweep.json").write_text(json.dumps(meta))
    with pytest.raises(DataValidationError, match=r"no column\(s\) sharpe named in sweep\.json"):
        load_sweep(tmp_path / "s")
    (tmp_path / "s" / "sweep.json").unlink()
    with pytest.raises(DataValidationError, match=r"not a saved sweep \(missing sweep\.json\)"):
        load_sweep(tmp_path / "s")


def test_the_run_store_lists_opens_and_refuses_unknown_names(
    runs: tuple[Path, dict], tmp_path: Path
) -> None:
    folder, _ = runs
    write_sweep_folder(tmp_path / "sweeps" / "grid-sweep")
    (tmp_path / "sweeps" / "not-a-sweep").mkdir()
    store = RunStore(folder, tmp_path / "sweeps")
    assert store.run_names() == ["grid-10", "grid-20", "grid-30", "grid-40", "grid-50", SMA_RUN]
    assert store.sweep_names() == ["grid-sweep"]
    first = store.result("grid-30")
    assert first.metrics["final_equity"] == grid_run(30).metrics["final_equity"]
    assert store.result("grid-30") is first  # cached while the files are unchanged
    stamp = (folder / "grid-30" / "result.json").stat().st_mtime
    os.utime(folder / "grid-30" / "result.json", (stamp + 5, stamp + 5))
    assert store.result("grid-30") is not first
    for bad in ("../runs", "grid-99", ""):
        with pytest.raises(ConfigError, match="no run named"):
            store.result(bad)
    bars_of_sweep = store.sweep_bars("grid-sweep")
    assert isinstance(bars_of_sweep, pd.DataFrame)
    assert_frame_equal(bars_of_sweep, bars())
    assert RunStore(tmp_path / "none", tmp_path / "none").run_names() == []
