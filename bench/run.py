"""Run the benchmarks: ``python -m bench`` (or ``python bench/run.py``).

Every peer is measured in the same process, on the same bars, after one warm-up call whose
time (numba compile or cache load, plus a run) is reported on its own. Figures are the best of
``--repeat`` calls, single core (``NUMBA_NUM_THREADS=1`` unless set). A table goes to stdout (to
stderr with ``--json``, which prints the JSON record to stdout); the record is also written to
``bench/results/latest.json``. Targets are reported PASS/MISS and never fail the run: these are
benchmarks, not tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

SINGLE_CORE_ENV = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def _single_core() -> None:
    for var in SINGLE_CORE_ENV:
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--bars", type=int, default=525_600, help="one-minute bars (default a year)")
    p.add_argument("--repeat", type=int, default=5, help="timed calls after the warm-up")
    p.add_argument("--cli-repeat", type=int, default=3, help="timed CLI processes")
    p.add_argument(
        "--cases", default="sma,grid,cli", help="comma-separated subset of sma, grid, cli"
    )
    p.add_argument("--no-backtesting", action="store_true", help="skip backtesting.py")
    p.add_argument(
        "--bt-limit",
        type=float,
        default=120.0,
        help="seconds above which backtesting.py is run on 52,560 bars and scaled",
    )
    p.add_argument("--json", action="store_true", help="print the JSON record to stdout")
    p.add_argument("--out", default=str(RESULTS / "latest.json"), help="where to write the JSON")
    return p


# ----------------------------------------------------------------------------- targets


def _ms(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"


def _short(peer: str) -> str:
    if peer.startswith("vectorbt"):
        return "vectorbt+stats" if "stats" in peer else "vectorbt"
    if peer.startswith("hand-written"):
        return "floor"
    return "ours"


def _ratio_target(
    name: str, basis: str, num: Any, den: Any, goal: str, ok: Callable[[float], bool]
) -> dict[str, Any]:
    """A target on ``num.best_s / den.best_s`` (wall); the CPU-time ratio rides along."""
    r = num.best_s / den.best_s
    detail = f"{_short(num.peer)} {_ms(num.best_s)} / {_short(den.peer)} {_ms(den.best_s)}"
    detail += f" = {r:.2f}x"
    cpu = None
    if num.cpu_best_s and den.cpu_best_s:
        cpu = num.cpu_best_s / den.cpu_best_s
        detail += f" (cpu {cpu:.2f}x)"
    return {
        "target": name,
        "basis": basis,
        "value": r,
        "cpu_value": cpu,
        "goal": goal,
        "result": "PASS" if ok(r) else "MISS",
        "detail": detail,
    }


def targets(cases: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each on our end-to-end time and on our core time (elapsed_ms);
    the two against vectorbt also on a third basis, ``full report``: our end to end (which
    computes our metrics) against vectorbt's same call followed by its ``pf.stats()``."""
    from bench import cases as C

    out: list[dict[str, Any]] = []
    both = (("end to end", ", end to end"), ("core", ", core (elapsed_ms)"))
    if "sma_cross" in cases:
        c = cases["sma_cross"]
        for basis, peer in (("end to end", C.OURS_E2E), ("core", C.OURS_CORE)):
            out.append(
                _ratio_target(
                    "SMA crossover >= 10x faster than vectorbt",
                    basis,
                    c.get(C.VBT),
                    c.get(peer),
                    ">= 10",
                    lambda r: r >= 10,
                )
            )
        out.append(
            _ratio_target(
                "SMA crossover >= 10x faster than vectorbt",
                "full report",
                c.get(C.VBT_STATS),
                c.get(C.OURS_E2E),
                ">= 10",
                lambda r: r >= 10,
            )
        )
    if "grid" in cases:
        c = cases["grid"]
        vbt, floor = c.get(C.GRID_VBT), c.get(C.GRID_FLOOR)
        for basis, suffix in both:
            ours = c.get(C.GRID_COMPILED + suffix)
            out.append(
                _ratio_target(
                    "grid compiled >= 30x faster than vectorbt",
                    basis,
                    vbt,
                    ours,
                    ">= 30",
                    lambda r: r >= 30,
                )
            )
            out.append(
                _ratio_target(
                    "grid compiled within 3x of the hand-written loop",
                    basis,
                    ours,
                    floor,
                    "<= 3",
                    lambda r: r <= 3,
                )
            )
        out.append(
            _ratio_target(
                "grid compiled >= 30x faster than vectorbt",
                "full report",
                c.get(C.GRID_VBT_STATS),
                c.get(C.GRID_COMPILED + ", end to end"),
                ">= 30",
                lambda r: r >= 30,
            )
        )
        for peer, label in ((C.GRID_PY, "plain-Python"), (C.GRID_KERNEL_PY, "kernel-from-Python")):
            for basis, suffix in both:
                out.append(
                    _ratio_target(
                        f"grid {label} path no slower than vectorbt",
                        basis,
                        vbt,
                        c.get(peer + suffix),
                        ">= 1",
                        lambda r: r >= 1,
                    )
                )
    if "cli" in cases:
        m = cases["cli"].get(C.CLI)
        cpu = f" (cpu {m.cpu_best_s:.2f} s)" if m.cpu_best_s else ""
        out.append(
            {
                "target": "CLI backtest < 3 s",
                "basis": "process",
                "value": m.best_s,
                "cpu_value": m.cpu_best_s,
                "goal": "< 3 s",
                "result": "PASS" if m.best_s < 3 else "MISS",
                "detail": f"best process {m.best_s:.2f} s{cpu}",
            }
        )
    return out


# ----------------------------------------------------------------------------- output


def _fmt_s(s: float | None) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def print_table(record: dict[str, Any], out: IO[str]) -> None:
    meta = record["meta"]
    w = out.write
    w(f"TradeTower benchmarks  {meta['when']}  ({meta['platform']}, {meta['cpus']} cpus)\n")
    w(
        f"single core: NUMBA_NUM_THREADS={meta['numba_num_threads']}; best of "
        f"{meta['repeat']} after one warm-up; 'first' = first call in this process "
        "(numba compile or cache load, plus one run); 'cpu' = best CPU time (process and "
        "children)\n"
    )
    load = meta["loadavg_1m"]
    busy = [x for x in load.values() if x is not None and x > 0.5 * (meta["cpus"] or 1)]
    w(f"load average (1 min) before/after: {load['before']} / {load['after']}")
    w("  -- BUSY MACHINE: figures are inflated, compare ratios only\n" if busy else "\n")
    d = meta["data"]
    w(
        f"data: {d['bars']:,} one-minute bars, seeded walk (seed {d['seed']}, vol {d['vol']}/bar, "
        f"reversion {d['reversion']}/bar), close {d['close_min']:.2f}..{d['close_max']:.2f}\n"
    )
    imports = ", ".join(f"{k} {_fmt_s(v)}" for k, v in meta["import_s"].items())
    w(f"imports (in this order, cumulative deps excluded): {imports}\n")
    for case in record["cases"].values():
        w(f"\n== {case['title']}  [{case['bars']:,} bars]\n" if case["bars"] else "\n")
        if not case["bars"]:
            w(f"== {case['title']}\n")
        head = (
            f"{'peer':54s} {'first':>9s} {'best':>9s} {'median':>9s} {'cpu':>9s} {'runs':>4s} "
            f"{case['count_label']:>7s} {'final equity':>14s}\n"
        )
        w(head)
        for m in case["measurements"]:
            count = "-" if m["count"] is None else f"{m['count']:,}"
            eq = "-" if m["equity"] is None else f"{m['equity']:,.6f}"
            w(
                f"{m['peer']:54s} {_fmt_s(m['first_s']):>9s} {_fmt_s(m['best_s']):>9s} "
                f"{_fmt_s(m['median_s']):>9s} {_fmt_s(m['cpu_best_s']):>9s} {m['runs']:>4d} "
                f"{count:>7s} {eq:>14s}\n"
            )
            if m["note"]:
                w(f"{'':6s}{m['note']}\n")
        for note in case["notes"]:
            w(f"  note: {note}\n")
    w("\n== targets (ratios from best times)\n")
    for t in record["targets"]:
        w(f"{t['result']:4s}  {t['target']:52s} [{t['basis']:10s}] {t['detail']}\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "numba", "pandas", "vectorbt", "backtesting"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git() -> dict[str, Any]:
    def q(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    return {"commit": q("rev-parse", "HEAD"), "dirty": bool(q("status", "--porcelain"))}


def _json_safe(obj: Any) -> Any:
    """NaN and infinities become null, so the record is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    _single_core()
    args = _parser().parse_args(argv)
    wanted = {c.strip() for c in args.cases.split(",") if c.strip()}
    unknown = wanted - {"sma", "grid", "cli"}
    if unknown:
        print(f"error: unknown case(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    import_s: dict[str, float] = {}
    t0 = time.perf_counter()
    import simulator  # noqa: F401
    import strategies  # noqa: F401

    import_s["tradetower (simulator, strategies)"] = time.perf_counter() - t0
    if wanted & {"sma", "grid"}:
        t0 = time.perf_counter()
        import vectorbt  # noqa: F401

        import_s["vectorbt"] = time.perf_counter() - t0
    if "sma" in wanted and not args.no_backtesting:
        t0 = time.perf_counter()
        import backtesting  # noqa: F401

        import_s["backtesting"] = time.perf_counter() - t0

    from bench import cases as C
    from bench.data import REVERSION, SEED, VOL, random_walk_bars

    bars = random_walk_bars(args.bars)
    print(f"bench: {len(bars):,} bars; cases {sorted(wanted)}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    load_before = _loadavg()
    results: dict[str, Any] = {}
    if "sma" in wanted:
        results["sma_cross"] = C.case_sma(
            bars, args.repeat, backtesting=not args.no_backtesting, bt_limit_s=args.bt_limit
        )
    if "grid" in wanted:
        results["grid"] = C.case_grid(bars, args.repeat)
    if "cli" in wanted:
        results["cli"] = C.case_cli(args.cli_repeat)
    record = {
        "meta": {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(terse=True),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS"),
            "repeat": args.repeat,
            "versions": _versions(),
            "git": _git(),
            "import_s": import_s,
            "total_s": time.perf_counter() - started,
            "loadavg_1m": {"before": load_before, "after": _loadavg()},
            "data": {
                "bars": len(bars),
                "seed": SEED,
                "vol": VOL,
                "reversion": REVERSION,
                "close_min": float(bars["close"].min()),
                "close_max": float(bars["close"].max()),
            },
        },
        "cases": {k: v.to_json() for k, v in results.items()},
        "targets": targets(results),
    }
    record = _json_safe(record)
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
    print_table(record, sys.stderr if args.json else sys.stdout)
    if args.json:
        json.dump(record, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    print(f"bench: wrote {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
