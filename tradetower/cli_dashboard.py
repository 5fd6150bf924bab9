"""``tradetower dashboard``: serve the Panel dashboards of saved runs and sweeps on localhost.

A composition root: it wires the sweep explorer's "open this combination" to the strategies
and the simulator, which the dashboards package may not import itself.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from tradetower.errors import ConfigError


class SweepInfo(Protocol):
    """What the opener needs of a saved sweep (``dashboards.store.SweepRecord``)."""

    name: str
    strategy: str
    base: dict[str, Any]
    data: dict[str, Any]
    sim: dict[str, Any]


def add_commands(sub: Any) -> None:
    dash = sub.add_parser(
        "dashboard", help="serve dashboards of saved backtests and sweeps on 127.0.0.1"
    )
    dash.add_argument("--runs", default="runs", help="folder of saved backtests (default runs/)")
    dash.add_argument("--sweeps", default="sweeps", help="folder of sweeps (default sweeps/)")
    dash.add_argument("--port", type=int, default=5006, help="port on 127.0.0.1 (default 5006)")
    dash.add_argument("--theme", choices=("dark", "light"), default="dark")
    dash.add_argument("--no-show", action="store_true", help="do not open a browser")
    dash.set_defaults(handler=_dashboard)


def open_sweep_backtest(record: SweepInfo, params: Mapping[str, Any]) -> Any:
    """Backtest one combination of a saved sweep as the sweep ran it: the sweep's base merged
    with ``params``, on its data, symbol, instrument and simulator settings (``sweep.json``).
    Returns a ``BacktestResult``."""
    from simulator.engine import backtest
    from strategies import strategy_class
    from tradetower.domain import Instrument

    store = importlib.import_module("dashboards.store")
    bars = store.read_sweep_data(record.data, getattr(record, "folder", None))
    if bars is None:
        raise ConfigError(
            "data", f"sweep {record.name!r} did not record where its bars are (sweep.json data)"
        )
    cls = strategy_class(record.strategy)
    config = cls.Config.parse({**record.base, **params})
    settings = dict(record.sim)
    symbol = str(settings.pop("symbol", None) or "ASSET")
    recorded = settings.pop("instrument", None)
    instrument: Instrument | dict[str, Instrument] | None = None
    if isinstance(recorded, Mapping) and "symbol" in recorded:
        instrument = Instrument.model_validate(recorded)
    elif isinstance(recorded, Mapping):
        instrument = {str(s): Instrument.model_validate(v) for s, v in recorded.items()}
    return backtest(cls(config), bars, symbol=symbol, instrument=instrument, **settings)


def _dashboard(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ConfigError("port", f"--port must be between 1 and 65535, got {args.port}")
    app = importlib.import_module("dashboards.app")
    try:
        app.serve(
            args.runs,
            args.sweeps,
            port=args.port,
            theme=args.theme,
            show=not args.no_show,
            open_backtest=open_sweep_backtest,
            verbose=True,
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, most often
        raise ConfigError("port", f"cannot serve on 127.0.0.1:{args.port}: {exc}") from None
    return 0
