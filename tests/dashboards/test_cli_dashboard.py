"""``tradetower dashboard``: its arguments, its errors, and the sweep opener it wires."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from dash_data import SWEEP_GRID, write_sweep

from dashboards.store import load_sweep
from tradetower.cli import main
from tradetower.cli_dashboard import open_sweep_backtest
from tradetower.errors import ConfigError


def test_the_opener_reruns_a_sweep_row_exactly(tmp_path: Path) -> None:
    table = write_sweep(tmp_path / "s")
    record = load_sweep(tmp_path / "s")
    row = table.iloc[7]
    params = {p: row[p].item() for p in SWEEP_GRID}
    result = open_sweep_backtest(record, params)
    assert result.strategy == "grid" and result.symbols == ("ETH-BTC",)
    assert result.params["grid_levels"] == params["grid_levels"]
    assert result.params["high_price"] == 0.11  # from the sweep's base
    assert result.metrics["final_equity"] == row["final_equity"]
    assert result.metrics["n_fills"] == row["n_fills"]
    assert result.config["fees"] == 0.001  # the sweep's simulator settings


def test_the_opener_names_what_is_missing(tmp_path: Path) -> None:
    write_sweep(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "sweep.json").read_text())
    meta["data"]["path"] = None
    (tmp_path / "s" / "sweep.json").write_text(json.dumps(meta))
    record = load_sweep(tmp_path / "s")
    with pytest.raises(ConfigError, match="sweep 's' did not record where its bars are"):
        open_sweep_backtest(record, {"grid_levels": 10})


def test_a_bad_port_is_an_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["dashboard", "--port", "0", "--no-show"]) == 2
    assert "error: --port must be between 1 and 65535, got 0" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["dashboard", "--port", str(port), "--no-show", "--runs", str(tmp_path)]
        assert main(args) == 2
    assert f"error: cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_theme_must_be_dark_or_light(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["dashboard", "--theme", "blue"])
    assert stop.value.code == 2
    assert "invalid choice: 'blue'" in capsys.readouterr().err
