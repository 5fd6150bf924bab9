"""The benchmark harness runs every case end to end on a tiny input. No timing is asserted:
benchmarks are not tests. What is asserted is that each case yields a positive time for every
peer and that the peers did the same work (same trades, same grid fills, same final equity)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench import cases as C
from bench import run as bench_run
from bench.data import random_walk_bars
from bench.grid import GridSpec, run_floor, run_ours

N = 2_000

# vectorbt's own numba functions take reflected lists; numba says so at compile time.
pytestmark = pytest.mark.filterwarnings("ignore::numba.NumbaPendingDeprecationWarning")


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return random_walk_bars(N)


def _all_timed(case: C.CaseResult) -> None:
    assert case.measurements
    for m in case.measurements:
        assert m.best_s > 0, m.peer
        assert m.runs >= 1, m.peer


def test_bars_are_valid_ohlcv_and_reproducible(bars: pd.DataFrame) -> None:
    assert len(bars) == N
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    pd.testing.assert_frame_equal(bars, random_walk_bars(N))


def test_sma_case_peers_take_the_same_crossings(bars: pd.DataFrame) -> None:
    # backtesting.py is quick on 2,000 bars; the slice it would be scaled from is the whole input
    case = C.case_sma(bars, repeat=1, bt_slice=N)
    _all_timed(case)
    counts = {m.peer: m.count for m in case.measurements}
    assert set(counts) == {C.OURS_E2E, C.OURS_CORE, C.VBT, C.VBT_STATS, C.BTPY}
    assert len(set(counts.values())) == 1, counts
    trades = counts[C.VBT]
    assert trades is not None and trades > 5


def test_grid_case_every_implementation_fills_the_same(bars: pd.DataFrame) -> None:
    case = C.case_grid(bars, repeat=1)
    _all_timed(case)
    floor = case.get(C.GRID_FLOOR)
    assert floor.count is not None and floor.count > 5
    for m in case.measurements:
        assert m.count == floor.count, m.peer
        assert m.equity == pytest.approx(floor.equity, rel=1e-9), m.peer


def test_ours_and_the_hand_written_loop_agree_on_another_walk() -> None:
    other = random_walk_bars(N, seed=7, vol=0.001)
    spec = GridSpec.around(float(other["close"].iloc[0]), levels=20)
    fills, equity, _ = run_floor(other, spec)
    ours = run_ours(other, spec, "compiled")
    assert fills > 5
    assert ours[0] == fills
    assert ours[1] == pytest.approx(equity, rel=1e-9)


def test_cli_case_times_a_whole_process() -> None:
    case = C.case_cli(repeat=1)
    _all_timed(case)


def test_main_prints_targets_and_writes_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Leave this process's thread settings alone: numba has started already.
    monkeypatch.setattr(bench_run, "_single_core", lambda: None)
    out = tmp_path / "latest.json"
    code = bench_run.main(
        ["--bars", str(N), "--repeat", "1", "--cases", "grid", "--json", "--out", str(out)]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    results = {t["result"] for t in printed["targets"]}
    assert results <= {"PASS", "MISS"} and results
    assert printed["cases"]["grid"]["bars"] == N
