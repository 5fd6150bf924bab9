"""The ``tradetower`` command, called in-process as a user would call it from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, real_file

from tradetower.cli import main

METRIC_KEYS = (
    "final_equity",
    "return_pct",
    "n_trades",
    "max_drawdown_pct",
    "sharpe",
    "sortino",
    "calmar",
    "win_rate_pct",
    "profit_factor",
    "exposure_pct",
    "fees_paid",
    "bars",
    "elapsed_ms",
)


def sample() -> str:
    return str(real_file("binance_ETH-BTC_5m_2018-01.parquet"))


def sma_args(*extra: str) -> list[str]:
    return [
        "backtest",
        "--strategy",
        "sma_cross",
        "--data",
        sample(),
        "--set",
        "fast=10",
        "--set",
        "slow=50",
        "--cash",
        "10000",
        "--fees",
        "0.001",
        *extra,
    ]


def test_backtest_json_prints_the_metrics_and_writes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(sma_args("--json", "--out", str(out))) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    metrics = payload["metrics"]
    assert set(METRIC_KEYS) <= set(metrics)
    assert payload["strategy"] == "sma_cross"
    assert payload["params"]["fast"] == 10 and payload["params"]["slow"] == 50
    assert payload["artifacts"] == str(out)
    bars = pd.read_parquet(sample())
    assert metrics["bars"] == len(bars)
    assert metrics["n_trades"] > 10
    assert metrics["return_pct"] == pytest.approx((metrics["final_equity"] / 10_000 - 1) * 100)
    for name in ("orders", "fills", "trades", "equity"):
        assert (out / f"{name}.parquet").is_file()
    fills = pd.read_parquet(out / "fills.parquet")
    equity = pd.read_parquet(out / "equity.parquet")
    trades = pd.read_parquet(out / "trades.parquet")
    assert len(equity) == len(bars)
    assert equity["equity"].iloc[-1] == pytest.approx(metrics["final_equity"], rel=1e-12)
    assert fills["fee"].sum() == pytest.approx(metrics["fees_paid"], rel=1e-12)
    assert len(trades) == metrics["n_trades"]
    record = json.loads((out / "result.json").read_text())
    assert record["metrics"]["final_equity"] == metrics["final_equity"]
    assert record["config"]["fees"] == 0.001


def test_backtest_table_without_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(sma_args("--out", str(tmp_path / "t"))) == 0
    text = capsys.readouterr().out
    assert text.startswith("sma_cross on binance_ETH-BTC_5m_2018-01\n")
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()[1:] if line.strip()}
    for key in ("final_equity", "return_pct", "n_trades", "sharpe", "fees_paid", "bars"):
        assert key in rows
    assert f"written to {tmp_path / 't'}/" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


@pytest.mark.nojit
def test_bad_data_file_exits_2_with_one_line_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=6, freq="1min", tz="UTC"),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.0,
            "volume": 1.0,
        }
    )
    bars.loc[4, ["high", "low"]] = [0.4, 0.6]
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    code = main(["backtest", "--strategy", "sma_cross", "--data", str(path), "--no-save"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: row 4 (2024-01-01 00:04:00+00:00): high < low")
    assert "Traceback" not in captured.err


@pytest.mark.nojit
def test_missing_data_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.parquet"
    assert main(["backtest", "--strategy", "sma_cross", "--data", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"


@pytest.mark.nojit
@pytest.mark.parametrize(
    ("pair", "named"),
    [("speed=3", "speed"), ("fast=0", "fast"), ("fast=60", "fast")],
)
def test_bad_set_exits_2_naming_the_key(
    pair: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backtest", "--strategy", "sma_cross", "--set", pair, "--out", str(tmp_path / "x")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and named in captured.err
    assert len(captured.err.splitlines()) == 1
    assert not (tmp_path / "x").exists()  # refused before anything ran


@pytest.mark.nojit
def test_unknown_strategy_exits_2_listing_the_known(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--strategy", "moonshot"]) == 2
    err = capsys.readouterr().err
    assert "moonshot" in err and "sma_cross" in err


@pytest.mark.nojit
def test_strategies_lists_and_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strategies"]) == 0
    listing = capsys.readouterr().out
    names = [line.split()[0] for line in listing.splitlines()]
    assert {"sma_cross", "simple_grid"} <= set(names)
    assert names == sorted(names)
    assert main(["strategies", "show", "sma_cross"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("sma_cross: ")
    assert table[1].split()[:2] == ["parameter", "type"]
    params = {line.split()[0]: line for line in table[2:]}
    assert {"fast", "slow", "reverse", "size"} <= set(params)
    fast = params["fast"].split()
    assert fast[1] == "integer" and "10000" in fast and "10" in fast  # type, range, default
    assert params["fast"].endswith("Bars in the fast moving average.")


def test_compat_backtesting_py_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(sma_args("--compat", "backtesting.py", "--json", "--no-save"))
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["artifacts"] is None
    metrics = payload["metrics"]
    assert metrics["n_trades"] > 10
    # backtesting.py trades whole units: ETH/BTC near 0.09 buys about 110k units for 10k.
    assert metrics["final_equity"] != pytest.approx(10_000)


def test_python_dash_m_help_runs_in_a_fresh_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tradetower", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tradetower")
    assert "backtest" in done.stdout and "strategies" in done.stdout


def test_a_saved_run_records_where_its_bars_came_from(tmp_path: Path) -> None:
    """The dashboard redraws a saved run's candles from the source the run recorded."""
    from dashboards.store import load_bars, load_result

    out = tmp_path / "run"
    code = main(["backtest", "--strategy", "sma_cross", "--out", str(out)])
    assert code == 0
    record = json.loads((out / "result.json").read_text())
    (symbol, source), *_ = record["config"]["data"].items()
    assert source["path"].endswith("data/binance_ETH-BTC_5m_2018-01.parquet")
    bars = load_bars(load_result(out), out)[symbol]
    assert len(bars) == record["metrics"]["bars"]
