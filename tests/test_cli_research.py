"""`tradetower sweep` and `tradetower regress` as a user calls them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, real_file

from simulator.research.runner import run_sweep
from tradetower.cli import main
from tradetower.domain import Instrument, read_bars

SAMPLE = "binance_ETH-BTC_5m_2018-01.parquet"


def sweep_args(out: Path, *extra: str) -> list[str]:
    return [
        "sweep",
        "--strategy",
        "simple_grid",
        "--data",
        str(real_file(SAMPLE)),
        "--grid",
        "grid_levels=10:40:10",
        "--grid",
        "low_price=0.08,0.085",
        "--set",
        "high_price=0.105",
        "--set",
        "investment=1",
        "--cash",
        "2",
        "--fees",
        "0.001",
        "--tick",
        "0.000001",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_help_lists_the_research_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tradetower", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sweep" in out and "regress" in out


def test_sweep_prints_the_ranked_table_and_keeps_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    assert main(sweep_args(out, "--json", "--top", "3")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert (payload["combinations"], payload["ran"], payload["reused"]) == (8, 8, 0)
    assert payload["objective"] == "return_pct" and payload["folder"] == str(out)
    symbol = Path(SAMPLE).stem
    same = run_sweep(
        "simple_grid",
        ["grid_levels=10:40:10", "low_price=0.08,0.085"],
        {symbol: read_bars(real_file(SAMPLE))},
        base={"high_price": 0.105, "investment": 1},
        cash=2.0,
        fees=0.001,
        instrument={symbol: Instrument(symbol=symbol, tick=0.000001)},
        progress=False,
    )
    assert payload["top"] == same.head(3).to_dict("records")
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["data"]["path"] == str(real_file(SAMPLE).resolve())
    assert meta["sim"]["instrument"][symbol]["tick"] == 0.000001
    assert len(pd.read_parquet(out / "results.parquet")) == 8

    assert main(sweep_args(out, "--top", "2")) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split() == [
        "rank",
        "combo",
        "grid_levels",
        "low_price",
        "final_equity",
        "return_pct",
        "max_drawdown_pct",
        "n_fills",
        "n_orders",
        "fees_paid",
        "exposure_pct",
        "grid_cycles",
    ]
    assert text[1].split()[:4] == ["1", str(payload["top"][0]["combo"]), "40", "0.085"]
    assert text[-1] == (
        f"8 combinations (0 run, 8 from the folder), ranked by return_pct; results in {out}/"
    )


def test_walk_forward_prints_one_row_per_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(sweep_args(tmp_path / "wf", "--walk-forward", "3", "--json")) == 0
    folds = json.loads(capsys.readouterr().out)["folds"]
    assert [(f["is_start"], f["is_end"], f["oos_start"], f["oos_end"]) for f in folds] == [
        (0, 1440, 1440, 2880),
        (1440, 2880, 2880, 4320),
        (2880, 4320, 4320, 5760),
    ]
    assert pd.read_parquet(tmp_path / "wf" / "walkforward.parquet")["fold"].tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--grid", "investment=0,1"],
            "error: investment: 0 is outside the field's range (> 0) in '0,1'",
        ),
        (["--objective", "sharpe"], "error: objective 'sharpe' is not a metric of this sweep"),
        (["--method", "random"], "error: trials: method random needs a number of trials ≥ 1"),
        (
            ["--local-cluster", "--scheduler", "tcp://127.0.0.1:1"],
            "error: give --scheduler or --local-cluster, not both",
        ),
    ],
)
def test_bad_sweeps_exit_2_with_one_line_and_run_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "s"
    assert main(sweep_args(out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err
    assert not (out / "results.parquet").exists()
