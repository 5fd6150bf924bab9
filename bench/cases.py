"""The three cases, each returning a :class:`CaseResult` of measurements on the same data."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench import cli_case, grid, sma
from bench.data import naive
from bench.timing import Measurement, measurement, once, timed

BT_SLICE = 52_560
BT_LIMIT_S = 120.0


@dataclass
class CaseResult:
    key: str
    title: str
    bars: int
    measurements: list[Measurement]
    count_label: str = "count"
    notes: list[str] = field(default_factory=list)

    def get(self, peer: str) -> Measurement:
        for m in self.measurements:
            if m.peer == peer:
                return m
        raise KeyError(peer)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "bars": self.bars,
            "count_label": self.count_label,
            "notes": self.notes,
            "measurements": [m.to_json() for m in self.measurements],
        }


def _log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


# Peer names, used by the targets.
OURS_E2E = "tradetower compiled, end to end"
OURS_CORE = "tradetower compiled, core (elapsed_ms)"
VBT = "vectorbt"
VBT_STATS = "vectorbt, with pf.stats()"
BTPY = "backtesting.py"
GRID_COMPILED = "tradetower compiled"
GRID_KERNEL_PY = "tradetower kernel via Python driver"
GRID_PY = "tradetower plain-Python callbacks"
GRID_VBT = "vectorbt from_order_func (flex)"
GRID_VBT_STATS = "vectorbt from_order_func (flex), with pf.stats()"
STATS_NOTE = (
    "and its report (pf.stats()): like for like with our end to end, which computes our metrics"
)
GRID_FLOOR = "hand-written @njit loop (floor)"
CLI = "tradetower backtest (process)"


def _core(peer: str, t: Any, idx: int, bars: int, **fields: Any) -> Measurement:
    """A row for our engine's own elapsed_ms, the ``idx``-th item of each run's output."""
    cores = [out[idx] for out in t.outputs]
    return Measurement(
        peer=peer,
        first_s=None,
        best_s=min(cores),
        median_s=sorted(cores)[len(cores) // 2],
        runs=len(cores),
        bars=bars,
        note="simulation only: no validation of the frame, no result frames or metrics",
        **fields,
    )


def case_sma(
    bars: pd.DataFrame,
    repeat: int,
    *,
    backtesting: bool = True,
    bt_slice: int = BT_SLICE,
    bt_limit_s: float = BT_LIMIT_S,
) -> CaseResult:
    """Ours and vectorbt: warm-up, then best of ``repeat``. backtesting.py (slow, pure Python
    per bar) runs once on the first ``bt_slice`` bars (its warm-up and an estimate), then once
    on all bars if the estimate is within ``bt_limit_s``; otherwise the slice's time and trade
    count are scaled linearly and the row says SCALED."""
    n = len(bars)
    rows: list[Measurement] = []
    _log("SMA: tradetower")
    t = timed(lambda: sma.run_ours(bars), repeat)
    trades, equity, _ = t.last
    rows.append(measurement(OURS_E2E, t, n, count=trades, equity=equity))
    rows.append(_core(OURS_CORE, t, 2, n, count=trades, equity=equity))

    _log("SMA: vectorbt")
    close = naive(bars["close"])
    tv = timed(lambda: sma.run_vectorbt(close), repeat)
    trades_v, equity_v = tv.last
    rows.append(
        measurement(
            VBT,
            tv,
            n,
            count=trades_v,
            equity=equity_v,
            note="fills at the signal bar's close; tz-naive index (see bench.data.naive)",
        )
    )
    _log("SMA: vectorbt with its stats")
    ts = timed(lambda: sma.run_vectorbt(close, stats=True), repeat)
    rows.append(measurement(VBT_STATS, ts, n, count=ts.last[0], equity=ts.last[1], note=STATS_NOTE))
    notes = []
    if backtesting:
        frame = sma.btpy_frame(bars)
        part = min(bt_slice, n)
        _log(f"SMA: backtesting.py on the first {part:,} bars")
        t_part, c_part, out_part = once(lambda: sma.run_backtesting(frame.iloc[:part]))
        estimate = t_part * n / part
        if part == n or estimate <= bt_limit_s:
            if part < n:
                _log(f"SMA: backtesting.py on all {n:,} bars (estimated {estimate:.0f} s)")
                t_full, c_full, out_full = once(lambda: sma.run_backtesting(frame))
            else:
                t_full, c_full, out_full = t_part, c_part, out_part
            rows.append(
                Measurement(
                    peer=BTPY,
                    first_s=t_part,
                    best_s=t_full,
                    median_s=t_full,
                    runs=1,
                    cpu_best_s=c_full,
                    count=out_full[0],
                    equity=out_full[1],
                    bars=n,
                    note=(
                        f"one run; the first call ran the first {part:,} bars (warm-up, estimate)"
                        if part < n
                        else "one run, no warm-up"
                    ),
                )
            )
        else:
            scale = n / part
            rows.append(
                Measurement(
                    peer=BTPY,
                    first_s=t_part,
                    best_s=t_part * scale,
                    median_s=t_part * scale,
                    runs=1,
                    cpu_best_s=c_part * scale,
                    count=round(out_part[0] * scale),
                    equity=out_part[1],
                    bars=part,
                    scale=scale,
                    note=(
                        f"SCALED: one run on the first {part:,} bars took {t_part:.1f} s; "
                        f"time and trades x{scale:.1f} (a full run was estimated at "
                        f"{estimate:.0f} s > {bt_limit_s:.0f} s)"
                    ),
                )
            )
            notes.append(f"backtesting.py figures are scaled linearly from {part:,} bars")
    return CaseResult(
        key="sma_cross",
        title=f"SMA crossover {sma.FAST}/{sma.SLOW}, signals included, fees {sma.FEES:g}",
        bars=n,
        measurements=rows,
        count_label="trades",
        notes=notes,
    )


def case_grid(bars: pd.DataFrame, repeat: int) -> CaseResult:
    n = len(bars)
    spec = grid.GridSpec.around(float(bars["close"].iloc[0]))
    rows: list[Measurement] = []
    for how, peer in (
        ("compiled", GRID_COMPILED),
        ("kernel-python", GRID_KERNEL_PY),
        ("py-callbacks", GRID_PY),
    ):
        _log(f"grid: {peer}")
        t = timed(lambda how=how: grid.run_ours(bars, spec, how), repeat)  # type: ignore[misc]
        fills, equity, _, cycles = t.last
        rows.append(
            measurement(
                f"{peer}, end to end", t, n, count=fills, equity=equity, extra={"cycles": cycles}
            )
        )
        rows.append(_core(f"{peer}, core (elapsed_ms)", t, 2, n, count=fills, equity=equity))
    _log("grid: vectorbt")
    vbars = naive(bars)
    tv = timed(lambda: grid.run_vectorbt(vbars, spec), repeat)
    rows.append(
        measurement(
            GRID_VBT,
            tv,
            n,
            count=tv.last[0],
            equity=tv.last[1],
            note="includes building the Portfolio; tz-naive index (see bench.data.naive)",
        )
    )
    _log("grid: vectorbt with its stats")
    tvs = timed(lambda: grid.run_vectorbt(vbars, spec, stats=True), repeat)
    rows.append(
        measurement(GRID_VBT_STATS, tvs, n, count=tvs.last[0], equity=tvs.last[1], note=STATS_NOTE)
    )
    _log("grid: hand-written loop")
    tf = timed(lambda: grid.run_floor(bars, spec), repeat)
    rows.append(
        measurement(
            GRID_FLOOR, tf, n, count=tf.last[0], equity=tf.last[1], extra={"cycles": tf.last[2]}
        )
    )
    return CaseResult(
        key="grid",
        title=(
            f"{spec.levels}-level spot grid {spec.low:.4g}..{spec.high:.4g} "
            f"(±{grid.GRID_WIDTH:.0%} of the first close), fees {spec.fees:g}"
        ),
        bars=n,
        measurements=rows,
        count_label="fills",
    )


def case_cli(repeat: int, sample: str = cli_case.SAMPLE) -> CaseResult:
    cmd = cli_case.command(sample)
    _log("CLI: " + " ".join(cmd[-6:]))
    t = timed(lambda: cli_case.run_cli(cmd), repeat)
    return CaseResult(
        key="cli",
        title="tradetower backtest --strategy sma_cross --data <bundled sample> --no-save",
        bars=0,
        measurements=[
            measurement(
                CLI, t, 0, note="whole process, warm numba cache, after one warm-up process"
            )
        ],
        count_label="-",
        notes=["command: " + " ".join(cmd)],
    )
