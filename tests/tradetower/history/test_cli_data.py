"""``tradetower data ...`` and ``backtest --venue``, end to end with the in-memory source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from memory_source import DAY, T0, MemorySource, synthetic_bars

from tradetower import history
from tradetower.cli import main
from tradetower.cli_data import TIMEFRAMES
from tradetower.history.source import TIMEFRAMES_MS

ROOT = Path(__file__).resolve().parents[3]
SKIP = (T0 + DAY + 6 * 3_600_000, T0 + 2 * DAY + 12 * 3_600_000)  # 30 hours of downtime
BARS = synthetic_bars(T0, T0 + 3 * DAY, skip=(SKIP,))


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> MemorySource:
    """The source every ``data fetch`` and ``backtest --venue`` gets."""
    memory = MemorySource(BARS)
    monkeypatch.setattr(history, "source_for", lambda venue: memory)
    return memory


def fetch_args(cache: Path, *extra: str) -> list[str]:
    return [
        "data",
        "fetch",
        "--venue",
        "memex",
        "--symbol",
        "BTC/USD",
        "--timeframe",
        "1m",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-04",
        "--cache-dir",
        str(cache),
        *extra,
    ]


def test_fetch_then_fetch_again_asks_nothing(
    tmp_path: Path, source: MemorySource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(fetch_args(tmp_path, "--no-progress")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"memex BTC-USD 1m: fetched {len(BARS):,} bars in 1 request(s) for "
        "2024-01-01 → 2024-01-04; venue had no bars for 2024-01-02 06:00 → 2024-01-03 12:00 "
        "(recorded, not re-asked)",
        f"memex:crypto:BTC-USD:1m: {len(BARS):,} bars held over 2024-01-01 → 2024-01-02 06:00, "
        "2024-01-03 12:00 → 2024-01-04; 1 known empty stretch(es); 1 data-quality warning(s) "
        "(see `tradetower data show memex BTC-USD 1m`)",
        f"cache: local folder {tmp_path}",
    ]
    assert main(fetch_args(tmp_path, "--no-progress")) == 0
    out = capsys.readouterr().out
    assert out.startswith("memex BTC-USD 1m: nothing to fetch, the cache already holds")
    assert len(source.calls) == 1


def test_fetch_shows_a_progress_bar(
    tmp_path: Path, source: MemorySource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(fetch_args(tmp_path)) == 0
    err = capsys.readouterr().err
    assert "memex BTC-USD 1m" in err
    assert f"{len(BARS) / 1000:.2f}k/4.32k" in err  # bars received / bars the range could hold


def test_ls_and_show_describe_the_catalog(
    tmp_path: Path, source: MemorySource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(fetch_args(tmp_path, "--no-progress")) == 0
    capsys.readouterr()
    assert main(["data", "ls", "--cache-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "venue",
        "class",
        "symbol",
        "tf",
        "held",
        "empty",
        "gaps",
        "rows",
        "size",
        "status",
    ]
    row = lines[1]
    assert row.startswith("memex  crypto  BTC-USD  1m")
    assert "2024-01-01 → 2024-01-02 06:00, 2024-01-03 12:00 → 2024-01-04" in row
    assert row.split()[-6:-3] == ["1", "1", f"{len(BARS):,}"]  # empty, gaps, rows
    assert row.endswith("AVAILABLE")
    assert lines[3] == f"1 series in local folder {tmp_path}"

    assert main(["data", "show", "memex", "BTC-USD", "1m", "--cache-dir", str(tmp_path)]) == 0
    show = capsys.readouterr().out.splitlines()
    assert show[0] == "memex:crypto:BTC-USD:1m  (AVAILABLE)"
    assert show[1].split()[:2] == ["bars", f"{len(BARS):,}"]
    assert show[1].endswith("(first 2024-01-01, last 2024-01-03 23:59 UTC)")
    assert show[2].startswith("  files        1 (") and show[2].endswith("): 2024-01")
    assert show[4] == "  known empty  2024-01-02 06:00 → 2024-01-03 12:00"
    assert show[5:] == [
        "  warnings     1",
        "    2024-01-02 06:00 → 2024-01-03 12:00  no bars for 1.2 days",
    ]

    assert main(["data", "ls", "--json", "--cache-dir", str(tmp_path)]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in docs] == ["memex:crypto:BTC-USD:1m"]
    assert docs[0]["emptyRanges"] == [list(SKIP)]


def test_ls_on_an_empty_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "ls", "--cache-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"the cache is empty (local folder {tmp_path})\n"


def test_show_of_a_series_not_held_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "show", "memex", "BTC-USD", "1m", "--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: the cache holds no memex BTC-USD 1m\n"


def import_args(file: Path, cache: Path) -> list[str]:
    return [
        "data",
        "import",
        str(file),
        "--venue",
        "memex",
        "--symbol",
        "ETH-USD",
        "--timeframe",
        "1m",
        "--cache-dir",
        str(cache),
    ]


def bars_csv(path: Path, bars: pd.DataFrame) -> Path:
    frame = bars.drop(columns="ts")
    frame.insert(0, "timestamp", pd.to_datetime(bars["ts"], unit="ms", utc=True))
    frame.to_csv(path, index=False)
    return path


def test_import_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = bars_csv(tmp_path / "eth.csv", synthetic_bars(T0, T0 + DAY))
    assert main(import_args(csv, tmp_path / "cache")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"imported 1,440 bars (2024-01-01 → 2024-01-01 23:59 UTC) from {csv} "
        "into memex:crypto:ETH-USD:1m"
    )
    assert main(["data", "ls", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "memex  crypto  ETH-USD  1m  2024-01-01 → 2024-01-02" in capsys.readouterr().out


def test_import_of_a_bad_file_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = synthetic_bars(T0, T0 + 10 * 60_000)
    bars.loc[4, "high"] = bars.loc[4, "low"] - 1
    csv = bars_csv(tmp_path / "bad.csv", bars)
    assert main(import_args(csv, tmp_path / "cache")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {csv}: row 4 (2024-01-01 00:04:00+00:00): high < low")
    assert len(captured.err.splitlines()) == 1
    assert not (tmp_path / "cache").exists()
    missing = tmp_path / "none.parquet"
    assert main(import_args(missing, tmp_path / "cache")) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"


def backtest_args(cache: Path, *extra: str) -> list[str]:
    return [
        "backtest",
        "--strategy",
        "sma_cross",
        "--set",
        "fast=10",
        "--set",
        "slow=50",
        "--venue",
        "memex",
        "--symbol",
        "BTC-USD",
        "--timeframe",
        "1m",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-04",
        "--cache-dir",
        str(cache),
        "--no-save",
        "--json",
        *extra,
    ]


def test_backtest_offline_runs_on_cached_bars(
    tmp_path: Path, source: MemorySource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(fetch_args(tmp_path, "--no-progress")) == 0
    capsys.readouterr()
    assert main(backtest_args(tmp_path, "--offline")) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["data"] == "memex:BTC-USD:1m:2024-01-01..2024-01-04"
    assert payload["metrics"]["bars"] == len(BARS)
    assert payload["metrics"]["n_trades"] > 0
    assert len(source.calls) == 1


def test_backtest_fetches_what_the_cache_lacks_unless_offline(
    tmp_path: Path, source: MemorySource, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(backtest_args(tmp_path, "--offline")) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: offline: the cache lacks memex BTC-USD 1m for 2024-01-01 → 2024-01-04 (UTC)"
    )
    assert source.calls == []
    assert main(backtest_args(tmp_path)) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["metrics"]["bars"] == len(BARS)
    assert len(source.calls) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--venue", "memex"], "error: --venue memex also needs --symbol, --timeframe, --start"),
        (["--timeframe", "1m"], "error: --timeframe only apply with --venue"),
        (
            ["--venue", "memex", "--data", "x.csv"],
            "error: give either --data FILE or --venue with --symbol, not both",
        ),
    ],
)
def test_backtest_cache_flags_are_checked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--strategy", "sma_cross", "--no-save", *argv]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_the_cli_timeframes_are_the_platforms() -> None:
    assert tuple(TIMEFRAMES_MS) == TIMEFRAMES


def test_building_the_parser_imports_no_pandas_ccxt_or_azure() -> None:
    code = (
        "import sys; from tradetower.cli import _parser; _parser(); "
        "print(sorted(m for m in ('pandas', 'ccxt', 'azure.storage.blob') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
