"""The dashboards' data store: saved backtests and sweeps read back from their folders.

A backtest folder is what :meth:`simulator.result.BacktestResult.save` writes (``result.json``
plus orders, fills, trades and equity Parquet). A sweep folder holds ``results.parquet`` (one
row per combination: parameter columns, then metric columns) and ``sweep.json`` naming them.
Nothing here imports Panel, so the store loads fast and is usable from any script.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.result import BacktestResult
from tradetower.domain import read_bars
from tradetower.errors import ConfigError, DataValidationError

RESULT_FILES = (
    "result.json",
    "orders.parquet",
    "fills.parquet",
    "trades.parquet",
    "equity.parquet",
)
SWEEP_FILES = ("sweep.json", "results.parquet")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(record, dict):
        raise DataValidationError(f"{path}: expected a JSON object, got {type(record).__name__}")
    return record


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a corrupt or missing file
        raise DataValidationError(f"{path}: cannot be read ({exc})") from None


def _require(folder: Path, names: tuple[str, ...], what: str) -> None:
    if not folder.is_dir():
        raise DataValidationError(f"{folder}: no such folder")
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise DataValidationError(f"{folder}: not a saved {what} (missing {', '.join(missing)})")


def load_result(folder: str | Path) -> BacktestResult:
    """Read back a run written by ``BacktestResult.save(folder)``.

    Trade durations come back as timedeltas (``save`` stores seconds); the equity Parquet
    splits into the equity curve and the per-symbol positions.
    """
    path = Path(folder)
    _require(path, RESULT_FILES, "backtest")
    record = _read_json(path / "result.json")
    for key in ("strategy", "metrics"):
        if key not in record:
            raise DataValidationError(f"{path / 'result.json'}: missing {key!r}")
    trades = _read_parquet(path / "trades.parquet")
    if "duration" in trades:
        trades["duration"] = pd.to_timedelta(trades["duration"], unit="s").astype("timedelta64[ns]")
    curve = _read_parquet(path / "equity.parquet")
    if "equity" not in curve:
        raise DataValidationError(f"{path / 'equity.parquet'}: missing column 'equity'")
    equity = curve["equity"]
    return BacktestResult(
        strategy=str(record["strategy"]),
        params=dict(record.get("params") or {}),
        symbols=tuple(str(s) for s in record.get("symbols") or ()),
        metrics=dict(record["metrics"]),
        orders=_read_parquet(path / "orders.parquet"),
        fills=_read_parquet(path / "fills.parquet"),
        trades=trades,
        equity=equity,
        positions=curve.drop(columns="equity"),
        config=dict(record.get("config") or {}),
    )


def data_sources(result: BacktestResult) -> dict[str, dict[str, Any]]:
    """Where each symbol's bars came from, as the run recorded it in ``config["data"]``.

    The recorded form is ``{"<symbol>": SOURCE}`` with SOURCE ``{"path": "<bars file>"}`` or
    ``{"venue", "symbol", "timeframe", "start", "end"}`` (the history cache), as in
    ``sweep.json``'s ``data``. A single-symbol run may also record SOURCE itself, or a bare
    path. Empty when the run recorded no data source.
    """
    data = result.config.get("data")
    first = result.symbols[:1]
    if not data:
        return {}
    if isinstance(data, str):
        return {s: {"path": data} for s in first}
    if not isinstance(data, Mapping):
        raise DataValidationError(f"config.data: expected a mapping, got {type(data).__name__}")
    if "path" in data or "venue" in data:
        return {s: dict(data) for s in first}
    sources = {}
    for symbol, source in data.items():
        if isinstance(source, str):
            source = {"path": source}
        if not isinstance(source, Mapping):
            raise DataValidationError(f"config.data.{symbol}: expected a mapping or a path")
        sources[str(symbol)] = dict(source)
    return sources


CACHE_KEYS = ("venue", "symbol", "timeframe", "start", "end")


def read_source(source: Mapping[str, Any], folder: str | Path | None = None) -> pd.DataFrame:
    """Bars from a recorded source: a file (a relative path is tried as given, then inside
    ``folder``) or the local history cache (offline: a dashboard never downloads)."""
    if isinstance(source.get("path"), str):
        path = Path(source["path"])
        if not path.is_absolute() and not path.exists() and folder is not None:
            path = Path(folder) / path
        return read_bars(path)
    if all(source.get(k) for k in CACHE_KEYS):
        history = importlib.import_module("tradetower.history")
        frame: pd.DataFrame = history.load_bars(
            *(source[k] for k in CACHE_KEYS), offline=True, cache_dir=source.get("cache_dir")
        )
        return frame
    raise DataValidationError(
        f"data source {dict(source)}: expected {{'path': ...}} or the keys {', '.join(CACHE_KEYS)}"
    )


def load_bars(result: BacktestResult, folder: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """The bars a run was computed on, by symbol, from the sources it recorded (``folder`` is
    the run's folder, for relative paths). Empty when the run recorded none."""
    return {symbol: read_source(src, folder) for symbol, src in data_sources(result).items()}


def read_sweep_data(
    data: Mapping[str, Any], folder: str | Path | None = None
) -> pd.DataFrame | dict[str, pd.DataFrame] | None:
    """The bars of a sweep from ``sweep.json``'s ``data``: ``{"path": ...}``, ``{"paths":
    {symbol: path}}`` (several symbols) or the history-cache keys; ``None`` when the sweep ran
    on bars it did not keep (``"path": null``)."""
    paths = data.get("paths")
    if isinstance(paths, Mapping):
        return {str(s): read_source({"path": p}, folder) for s, p in paths.items()}
    if data.get("path") is None and not data.get("venue"):
        return None
    return read_source(data, folder)


@dataclass
class SweepRecord:
    """A saved sweep: the table and what its columns mean."""

    name: str
    strategy: str
    params: list[str]
    metrics: list[str]
    frame: pd.DataFrame
    base: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    sim: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None


def load_sweep(folder: str | Path) -> SweepRecord:
    """Read a sweep folder (``results.parquet`` + ``sweep.json``)."""
    path = Path(folder)
    _require(path, SWEEP_FILES, "sweep")
    meta = _read_json(path / "sweep.json")
    frame = _read_parquet(path / "results.parquet")
    where = path / "sweep.json"
    for key in ("strategy", "params", "metrics"):
        if key not in meta:
            raise DataValidationError(f"{where}: missing {key!r}")
    params = [str(p) for p in meta["params"]]
    metrics = [str(m) for m in meta["metrics"]]
    if not params or not metrics:
        raise DataValidationError(f"{where}: 'params' and 'metrics' must each name a column")
    missing = [c for c in (*params, *metrics) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{path / 'results.parquet'}: no column(s) {', '.join(missing)} named in sweep.json"
        )
    return SweepRecord(
        name=path.name,
        strategy=str(meta["strategy"]),
        params=params,
        metrics=metrics,
        frame=frame,
        base=dict(meta.get("base") or {}),
        data=dict(meta.get("data") or {}),
        sim=dict(meta.get("sim") or {}),
        folder=path,
    )


class RunStore:
    """Saved runs under ``runs_dir`` and sweeps under ``sweeps_dir``, loaded on demand.

    Names are folder names; only folders found by the listing can be opened, so a name from a
    URL never reaches outside the two folders. Loaded items are cached until their files change.
    """

    def __init__(self, runs_dir: str | Path = "runs", sweeps_dir: str | Path = "sweeps") -> None:
        self.runs_dir = Path(runs_dir)
        self.sweeps_dir = Path(sweeps_dir)
        self._results: dict[str, tuple[float, BacktestResult]] = {}
        self._sweeps: dict[str, tuple[float, SweepRecord]] = {}

    @staticmethod
    def _names(folder: Path, marker: str) -> list[str]:
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / marker).is_file())

    def run_names(self) -> list[str]:
        return self._names(self.runs_dir, "result.json")

    def sweep_names(self) -> list[str]:
        return self._names(self.sweeps_dir, "sweep.json")

    def _folder(self, base: Path, name: str, names: list[str], what: str) -> Path:
        if name not in names:
            known = ", ".join(names) if names else "none"
            raise ConfigError(what, f"no {what} named {name!r} in {base}/ (found: {known})")
        return base / name

    def result(self, name: str) -> BacktestResult:
        folder = self._folder(self.runs_dir, name, self.run_names(), "run")
        stamp = (folder / "result.json").stat().st_mtime
        cached = self._results.get(name)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_result(folder))
            self._results[name] = cached
        return cached[1]

    def bars(self, name: str) -> dict[str, pd.DataFrame]:
        return load_bars(self.result(name), self.runs_dir / name)

    def sweep(self, name: str) -> SweepRecord:
        folder = self._folder(self.sweeps_dir, name, self.sweep_names(), "sweep")
        stamp = (folder / "results.parquet").stat().st_mtime
        cached = self._sweeps.get(name)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_sweep(folder))
            self._sweeps[name] = cached
        return cached[1]

    def sweep_bars(self, name: str) -> pd.DataFrame | dict[str, pd.DataFrame] | None:
        """The bars a sweep ran on, when ``sweep.json`` recorded where they are."""
        return read_sweep_data(self.sweep(name).data, self.sweeps_dir / name)
