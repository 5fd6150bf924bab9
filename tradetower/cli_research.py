"""``tradetower sweep`` (grid, random or Optuna parameter sweeps, walk-forward) and
``tradetower regress`` (the golden backtests). Registration is argparse only; the research
packages are imported inside the handlers."""

from __future__ import annotations

import argparse
import copy
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradetower.errors import ConfigError

# Options of `backtest` that `sweep` takes as they are: the data (a file, or cached history
# by venue where `backtest` offers it), fixed parameters, and the simulated venue (account,
# fees, rounding, fidelity). Only those `backtest` has are copied.
SHARED_WITH_BACKTEST = (
    "strategy",
    "data",
    "venue",
    "timeframe",
    "start",
    "end",
    "offline",
    "cache_dir",
    "overrides",
    "symbol",
    "cash",
    "fees",
    "maker_fee",
    "taker_fee",
    "tick",
    "lot",
    "min_notional",
    "margin",
    "leverage",
    "slippage_bps",
    "participation",
    "intrabar",
    "compat",
    "no_close_at_end",
)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sw = sub.add_parser(
        "sweep",
        help="run a strategy over many parameter combinations and rank them",
        description="Grid, random or Optuna sweep of a strategy's parameters, optionally "
        "walk-forward, in-process or on a Dask cluster; results go to a resumable folder.",
    )
    copy_arguments(sub.choices["backtest"], sw, SHARED_WITH_BACKTEST)
    sw.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="swept parameter: lo:hi:step, a,b,c, or lo:hi (random/optuna) (repeatable)",
    )
    sw.add_argument("--method", choices=("grid", "random", "optuna"), default="grid")
    sw.add_argument("--trials", type=int, default=None, help="combinations for random/optuna")
    sw.add_argument("--seed", type=int, default=0)
    sw.add_argument(  # the default is simulator.research.runner.DEFAULT_OBJECTIVE
        "--objective", default="return_pct", help="metric to rank by; -name minimises it"
    )
    sw.add_argument(
        "--walk-forward",
        "--folds",
        dest="folds",
        type=int,
        default=None,
        metavar="K",
        help="walk-forward over K folds (best in-sample, judged out-of-sample)",
    )
    sw.add_argument("--anchored", action="store_true", help="folds train from the first bar")
    sw.add_argument("--train-bars", type=int, default=None, help="rolling walk-forward window")
    sw.add_argument("--test-bars", type=int, default=None, help="rolling out-of-sample window")
    sw.add_argument("--step-bars", type=int, default=None, help="rolling step (default test)")
    sw.add_argument("--out", default=None, help="sweep folder (default sweeps/<strategy>-<time>)")
    sw.add_argument("--fresh", action="store_true", help="discard the results already in --out")
    sw.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="Dask scheduler, e.g. tcp://HOST:8786 (default $TRADETOWER_DASK_SCHEDULER)",
    )
    sw.add_argument(
        "--local-cluster", action="store_true", help="run on a local Dask cluster of 2 workers"
    )
    sw.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="combinations per task and per save (optuna: trials per batch, default 8)",
    )
    sw.add_argument("--top", type=int, default=10, help="rows of the ranked table to print")
    sw.add_argument("--json", action="store_true", help="print the result as JSON")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.set_defaults(handler=_sweep)

    rg = sub.add_parser(
        "regress",
        help="re-run the golden backtests and fail on any drift",
        description="Run every golden backtest and compare it with its record; --update "
        "re-records them (review the diff before committing).",
    )
    rg.add_argument("names", nargs="*", help="only these cases")
    rg.add_argument(
        "--cases", default="tests/golden", help="folder with golden_cases.py and the records"
    )
    rg.add_argument("--update", action="store_true", help="re-record instead of comparing")
    rg.set_defaults(handler=_regress)


def copy_arguments(
    source: argparse.ArgumentParser, target: argparse.ArgumentParser, dests: tuple[str, ...]
) -> None:
    """Give ``target`` the options of ``source`` whose destinations are in ``dests``, as
    argparse's ``parents`` does, so both commands share one definition of each."""
    for action in source._actions:
        if action.dest in dests:
            target._add_action(copy.copy(action))


# --------------------------------------------------------------------------- handlers


def _sweep(args: argparse.Namespace) -> int:
    from strategies import strategy_class
    from tradetower.cli import instrument_from_args
    from tradetower.config import parse_overrides

    cls = strategy_class(args.strategy)
    if args.scheduler and args.local_cluster:
        raise ConfigError("scheduler", "give --scheduler or --local-cluster, not both")
    symbol, data, source = _data(args)
    instrument = instrument_from_args(args, symbol)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(args.out or Path("sweeps") / f"{args.strategy}-{stamp}")
    common: dict[str, Any] = {
        "base": parse_overrides(cls.Config, args.overrides),
        "method": args.method,
        "n_trials": args.trials,
        "seed": args.seed,
        "objective": args.objective,
        "chunk_size": args.chunk_size,
        "resume": not args.fresh,
        "scheduler": "local" if args.local_cluster else args.scheduler,
        "progress": not args.no_progress,
        "symbol": symbol,
        "data_source": source,
        "instrument": {symbol: instrument},
        "cash": args.cash,
        "fees": args.fees,
        "slippage_bps": args.slippage_bps,
        "participation": args.participation,
        "intrabar": args.intrabar,
        "compat": args.compat,
        "close_at_end": not args.no_close_at_end,
    }
    if args.folds is not None or args.train_bars is not None or args.test_bars is not None:
        return _walk_forward(args, data, folder, common)
    from simulator.research.runner import run_sweep

    table = run_sweep(args.strategy, args.grid, data, folder=folder, **common)
    if args.json:
        payload = {
            "strategy": args.strategy,
            "folder": str(folder),
            "method": args.method,
            "objective": table.attrs["objective"],
            "combinations": len(table),
            "ran": table.attrs["ran"],
            "reused": table.attrs["reused"],
            "top": _records(table.head(args.top)),
        }
        print(json.dumps(payload, indent=2, allow_nan=False, default=str))
        return 0
    print(_table(table.head(args.top)))
    print(
        f"\n{len(table)} combinations ({table.attrs['ran']} run, {table.attrs['reused']} from "
        f"the folder), ranked by {table.attrs['objective']}; results in {folder}/"
    )
    return 0


def _data(args: argparse.Namespace) -> tuple[str, Any, dict[str, Any] | None]:
    """``(symbol, bars, how to load them again)`` from ``--data FILE`` (default the bundled
    sample) or, where ``backtest`` offers it, ``--venue`` cached history."""
    from tradetower import cli
    from tradetower.domain import read_bars

    if getattr(args, "venue", None):
        symbol, market, _ = cli._cached_bars(args)
        keys = ("venue", "symbol", "timeframe", "start", "end")
        return symbol, market, {key: getattr(args, key) for key in keys}
    refuse = getattr(cli, "_refuse_cache_flags", None)
    if refuse is not None:
        refuse(args)
    path = args.data or cli.DEFAULT_SAMPLE
    symbol = args.symbol or Path(path).stem
    return symbol, {symbol: read_bars(path)}, {"path": str(Path(path).resolve())}


def _walk_forward(args: argparse.Namespace, data: Any, folder: Path, common: dict[str, Any]) -> int:
    from simulator.research.walkforward import walk_forward

    table = walk_forward(
        args.strategy,
        args.grid,
        data,
        folds=args.folds,
        anchored=args.anchored,
        train_bars=args.train_bars,
        test_bars=args.test_bars,
        step_bars=args.step_bars,
        folder=folder,
        **common,
    )
    if args.json:
        payload = {
            "strategy": args.strategy,
            "folder": str(folder),
            "objective": table.attrs["objective"],
            "folds": _records(table),
        }
        print(json.dumps(payload, indent=2, allow_nan=False, default=str))
        return 0
    metric = table.attrs["objective"].removeprefix("-")
    shown = ["fold", "is_start", "is_end", "oos_start", "oos_end", *table.attrs["params"]]
    shown += [f"is_{metric}", f"oos_{metric}", "oos_max_drawdown_pct", "oos_n_fills"]
    print(_table(table[list(dict.fromkeys(shown))]))
    print(f"\n{len(table)} folds, best in-sample by {table.attrs['objective']}; in {folder}/")
    return 0


def _regress(args: argparse.Namespace) -> int:
    from simulator.research.regress import regress

    return regress(args.cases, args.names, update=args.update)


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN as null)."""
    rows: list[dict[str, Any]] = frame.to_dict("records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else _plain(v) for k, v in r.items()}
        for r in rows
    ]


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str) else value


def _table(frame: Any) -> str:
    text: str = frame.to_string(index=False, float_format=lambda v: f"{v:.6g}")
    return text
