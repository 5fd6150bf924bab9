"""The ``tradetower`` command. A composition root: it wires packages together lazily, so
``tradetower --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradetower.errors import TradeTowerError

DEFAULT_SAMPLE = "data/binance_ETH-BTC_5m_2018-01.parquet"

# Further command groups, each a module with ``add_commands(subparsers)`` that adds its
# sub-commands with ``set_defaults(handler=...)``; a handler takes the parsed arguments and
# returns the exit code. Registration must stay cheap (argparse only; heavy imports go inside
# the handlers) so that ``tradetower --help`` stays fast.
_COMMAND_MODULES: tuple[str, ...] = (
    "tradetower.cli_data",
    "tradetower.cli_research",
    "tradetower.cli_dashboard",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradetower", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bt = sub.add_parser("backtest", help="run a strategy over bars on the simulated exchange")
    bt.add_argument("--strategy", required=True, help="a name from `tradetower strategies`")
    bt.add_argument(
        "--data",
        default=None,
        help="Parquet or CSV with timestamp, open, high, low, close, volume "
        f"(default {DEFAULT_SAMPLE}; or name cached history with --venue)",
    )
    bt.add_argument(
        "--venue", default=None, help="bars from the history cache: venue (needs --symbol ...)"
    )
    bt.add_argument("--timeframe", default=None, help="with --venue: 1m, 5m, 15m, 1h, 4h or 1d")
    bt.add_argument("--start", default=None, help="with --venue: first day, UTC (2024-01-01)")
    bt.add_argument("--end", default=None, help="with --venue: end day, exclusive, UTC")
    bt.add_argument(
        "--offline", action="store_true", help="with --venue: never fetch, use the cache only"
    )
    bt.add_argument("--cache-dir", default=None, help="with --venue: the history cache folder")
    bt.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy parameter (repeatable)",
    )
    bt.add_argument(
        "--symbol",
        default=None,
        help="instrument symbol (default: the file name); with --venue, the symbol to load",
    )
    bt.add_argument("--cash", type=float, default=10_000.0)
    bt.add_argument(
        "--fees", type=float, default=None, help="fee rate for maker and taker, e.g. 0.001"
    )
    bt.add_argument("--maker-fee", type=float, default=0.0)
    bt.add_argument("--taker-fee", type=float, default=0.0)
    bt.add_argument("--tick", type=float, default=0.0, help="price tick (0 = no rounding)")
    bt.add_argument("--lot", type=float, default=0.0, help="quantity step (0 = no rounding)")
    bt.add_argument("--min-notional", type=float, default=0.0)
    bt.add_argument("--margin", action="store_true", help="allow shorts and leverage")
    bt.add_argument("--leverage", type=float, default=1.0)
    bt.add_argument("--slippage-bps", type=float, default=0.0)
    bt.add_argument(
        "--participation", type=float, default=0.0, help="max share of bar volume per fill"
    )
    bt.add_argument("--intrabar", choices=("default", "conservative"), default="default")
    bt.add_argument("--compat", choices=("backtesting.py",), default=None)
    bt.add_argument(
        "--no-close-at-end", action="store_true", help="leave positions open at the end"
    )
    bt.add_argument("--mode", choices=("auto", "python", "compiled"), default="auto")
    bt.add_argument(
        "--out",
        default=None,
        help="folder for orders/fills/trades/equity Parquet (default runs/<strategy>-<time>)",
    )
    bt.add_argument("--no-save", action="store_true", help="do not write artifacts")
    bt.add_argument("--json", action="store_true", help="print metrics as JSON")
    _risk_flags(bt)

    st = sub.add_parser("strategies", help="list the built-in strategies, or show one's parameters")
    st.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    st.add_argument("name", nargs="?")
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def _risk_flags(bt: argparse.ArgumentParser) -> None:
    """The shared risk rules (STRATEGIES.md §4); giving any of them turns the rules on."""
    bt.add_argument("--max-order-notional", type=float, default=None, help="largest order, quote")
    bt.add_argument("--max-leverage", type=float, default=None, help="leverage cap")
    bt.add_argument(
        "--max-orders-per-minute",
        type=int,
        default=None,
        help="orders in a rolling minute (60 when another risk flag is given; 0 = off)",
    )
    bt.add_argument(
        "--max-drawdown-pct", type=float, default=None, help="close the bot this far below peak"
    )
    bt.add_argument(
        "--daily-loss-limit", type=float, default=None, help="pause the bot for the UTC day"
    )


def _risk_config(args: argparse.Namespace) -> Any:
    """A RiskConfig from the risk flags, or None when none was given."""
    from tradetower.risk import RiskConfig

    given = {
        "max_order_notional": args.max_order_notional,
        "max_leverage": args.max_leverage,
        "max_orders_per_minute": args.max_orders_per_minute,
        "max_drawdown_pct": args.max_drawdown_pct,
        "daily_loss_limit": args.daily_loss_limit,
    }
    fields = {k: v for k, v in given.items() if v is not None}
    if not fields:
        return None
    if fields.get("max_orders_per_minute") == 0:
        fields["max_orders_per_minute"] = None
    return RiskConfig.parse(fields)


def _backtest(args: argparse.Namespace) -> int:
    from simulator.engine import backtest
    from strategies import strategy_class
    from tradetower.config import apply_overrides
    from tradetower.domain import read_bars

    cls = strategy_class(args.strategy)
    config = apply_overrides(cls.Config, args.overrides)
    data: Any
    if args.venue:
        symbol, data, data_label = _cached_bars(args)
    else:
        _refuse_cache_flags(args)
        data_label = args.data or DEFAULT_SAMPLE
        symbol = args.symbol or Path(data_label).stem
        data = {symbol: read_bars(data_label)}
    instrument = instrument_from_args(args, symbol)
    result = backtest(
        cls(config),
        data,
        instrument={symbol: instrument},
        mode=args.mode,
        cash=args.cash,
        fees=args.fees,
        slippage_bps=args.slippage_bps,
        participation=args.participation,
        intrabar=args.intrabar,
        compat=args.compat,
        close_at_end=not args.no_close_at_end,
        risk=_risk_config(args),
    )
    artifacts = None
    # Where the bars came from, so a dashboard can draw the run's candles again.
    source: dict[str, Any] = {"path": str(Path(data_label).resolve())}
    if args.venue:
        source = {k: getattr(args, k) for k in ("venue", "symbol", "timeframe", "start", "end")}
        source["cache_dir"] = args.cache_dir
    result.config["data"] = {symbol: source}
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        artifacts = str(result.save(args.out or Path("runs") / f"{args.strategy}-{stamp}"))
    if args.json:
        payload: dict[str, Any] = {
            "strategy": result.strategy,
            "params": result.params,
            "data": str(data_label),
            "metrics": result.metrics,
            "artifacts": artifacts,
        }
        print(json.dumps(payload, indent=2, allow_nan=False, default=str))
    else:
        print(result.summary())
        if artifacts:
            print(f"\norders, fills, trades and equity written to {artifacts}/")
    return 0


def instrument_from_args(args: argparse.Namespace, symbol: str) -> Any:
    """The instrument the simulator settings of ``backtest`` (and ``sweep``) describe."""
    from tradetower.domain import Instrument

    return Instrument(
        symbol=symbol,
        tick=args.tick,
        lot=args.lot,
        min_notional=args.min_notional,
        maker_fee=args.maker_fee,
        taker_fee=args.taker_fee,
        margin=args.margin or args.leverage > 1,
        leverage=args.leverage,
    )


def _cached_bars(args: argparse.Namespace) -> tuple[str, Any, str]:
    """``backtest --venue V --symbol S --timeframe TF --start D --end D``: bars from the
    history cache, fetching what it lacks unless ``--offline``."""
    from tradetower.errors import ConfigError
    from tradetower.history import open_cache

    if args.data:
        raise ConfigError("data", "give either --data FILE or --venue with --symbol, not both")
    needed = {
        "--symbol": args.symbol,
        "--timeframe": args.timeframe,
        "--start": args.start,
        "--end": args.end,
    }
    missing = [flag for flag, value in needed.items() if not value]
    if missing:
        raise ConfigError("venue", f"--venue {args.venue} also needs {', '.join(missing)}")
    market = open_cache(args.cache_dir).load_market(
        args.venue,
        args.symbol,
        args.timeframe,
        args.start,
        args.end,
        offline=args.offline,
        progress=True,
    )
    label = f"{args.venue}:{args.symbol}:{args.timeframe}:{args.start}..{args.end}"
    return str(args.symbol), market, label


def _refuse_cache_flags(args: argparse.Namespace) -> None:
    from tradetower.errors import ConfigError

    flags = {"--timeframe": args.timeframe, "--start": args.start, "--end": args.end}
    flags.update({"--offline": args.offline, "--cache-dir": args.cache_dir})
    given = [flag for flag, value in flags.items() if value]
    if given:
        raise ConfigError("venue", f"{', '.join(given)} only apply with --venue (cached history)")


def _strategies(args: argparse.Namespace) -> int:
    from strategies import REGISTRY, strategy_class

    if args.action == "list" or not args.name:
        width = max(len(n) for n in REGISTRY)
        for name, (_, _, summary) in sorted(REGISTRY.items()):
            print(f"{name:<{width}}  {summary}")
        return 0
    cls = strategy_class(args.name)
    schema = cls.Config.json_schema()
    required = set(schema.get("required", []))
    doc = cls.__doc__.strip().splitlines()[0] if cls.__doc__ else ""
    rows = [
        _param_row(name, spec, schema, name in required)
        for name, spec in schema.get("properties", {}).items()
    ]
    print(f"{args.name}: {doc}")
    widths = [max(len(r[c]) for r in [*rows, _HEADER]) for c in range(4)]
    for row in [_HEADER, *rows]:
        cells = [row[c].ljust(widths[c]) for c in range(4)]
        print("  ".join(cells) + "  " + row[4])
    return 0


_HEADER = ("parameter", "type", "range / choices", "default", "meaning")


def _param_row(
    name: str, spec: dict[str, Any], schema: dict[str, Any], required: bool
) -> tuple[str, ...]:
    """One row of `strategies show`: optional fields (anyOf with null) and enums resolved."""
    options = spec.get("anyOf", [spec])
    picked = next((o for o in options if o.get("type") != "null"), options[0])
    if "$ref" in picked:
        picked = schema.get("$defs", {}).get(picked["$ref"].rsplit("/", 1)[-1], picked)
    kind = str(picked.get("type", ""))
    if "enum" in picked:
        kind, rng = "enum", ", ".join(str(v) for v in picked["enum"])
    else:
        lo = picked.get("minimum", picked.get("exclusiveMinimum"))
        hi = picked.get("maximum", picked.get("exclusiveMaximum"))
        lo_s = "" if lo is None else ("> " if "exclusiveMinimum" in picked else "") + f"{lo}"
        hi_s = "" if hi is None else ("< " if "exclusiveMaximum" in picked else "") + f"{hi}"
        rng = "" if lo is None and hi is None else f"{lo_s} .. {hi_s}".strip()
    if any(o.get("type") == "null" for o in options):
        kind += " | none"
    default = "required" if required else json.dumps(spec.get("default"))
    return (name, kind, rng, default, str(spec.get("description", "")))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args))
        if args.command == "backtest":
            return _backtest(args)
        return _strategies(args)
    except TradeTowerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
