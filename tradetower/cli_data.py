"""``tradetower data``: fetch history into the cache, list it, show one series, import a file.

Registration is argparse only; pandas, ccxt and azure load inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradetower.history.cache import HistoryCache
    from tradetower.history.catalog import CatalogEntry

#: The platform's timeframes (``tradetower.history.source.TIMEFRAMES_MS``, kept literal here so
#: that building the parser imports no pandas; a test checks the two agree).
TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")
CACHE_DIR_HELP = (
    "cache folder (default: TRADETOWER_CACHE_DIR, an Azure Blob container when "
    "TRADETOWER_BLOB_URL or TRADETOWER_BLOB_CONNECTION_STRING is set, else the user data folder)"
)


def add_commands(sub: Any) -> None:
    data = sub.add_parser("data", help="historical bars: fetch, list, show, import")
    verbs = data.add_subparsers(dest="data_command", required=True)

    fetch = verbs.add_parser("fetch", help="download bars the cache lacks (resumes if cut off)")
    _series_args(fetch)
    fetch.add_argument("--start", required=True, help="first day or time, UTC (2024-01-01)")
    fetch.add_argument("--end", required=True, help="end, exclusive, UTC (2024-03-01)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    fetch.set_defaults(handler=_fetch)

    ls = verbs.add_parser("ls", help="the catalog: every series held, its ranges and gaps")
    ls.add_argument("--json", action="store_true", help="print the catalog documents as JSON")
    ls.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    ls.set_defaults(handler=_ls)

    show = verbs.add_parser("show", help="one series: bars, files, held ranges, gaps")
    show.add_argument("venue")
    show.add_argument("symbol")
    show.add_argument("timeframe", choices=TIMEFRAMES)
    show.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    show.set_defaults(handler=_show)

    imp = verbs.add_parser("import", help="bring a CSV or Parquet file of bars into the cache")
    imp.add_argument("file", help="CSV or Parquet with timestamp, open, high, low, close, volume")
    _series_args(imp)
    imp.add_argument("--asset-class", choices=("crypto", "equity"), default="crypto")
    imp.add_argument("--cache-dir", default=None, help=CACHE_DIR_HELP)
    imp.set_defaults(handler=_import)


def _series_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", required=True, help="alpaca or a ccxt exchange id (coinbase)")
    parser.add_argument("--symbol", required=True, help="BTC-USD, BTC/USD, AAPL...")
    parser.add_argument("--timeframe", required=True, choices=TIMEFRAMES)


def _cache(args: argparse.Namespace) -> HistoryCache:
    from tradetower.history import open_cache

    return open_cache(args.cache_dir)


def _fetch(args: argparse.Namespace) -> int:
    from tradetower import history

    cache = _cache(args)
    source = history.source_for(args.venue)
    report = cache.fetch(
        source, args.symbol, args.timeframe, args.start, args.end, progress=not args.no_progress
    )
    print(report.describe())
    entry = cache.catalog(report.key)
    if entry is not None:
        print(_held_line(entry))
    print(f"cache: {cache.store.description}")
    return 0


def _held_line(entry: CatalogEntry) -> str:
    from tradetower.history.catalog import fmt_intervals

    warnings = len(entry.data_quality)
    return (
        f"{entry.key.id}: {entry.total_candles:,} bars held over {fmt_intervals(entry.ranges)}; "
        f"{len(entry.empty_ranges)} known empty stretch(es); {warnings} data-quality warning(s)"
        + (f" (see `tradetower data show {_show_args(entry)}`)" if warnings else "")
    )


def _show_args(entry: CatalogEntry) -> str:
    return f"{entry.key.exchange} {entry.key.symbol} {entry.key.timeframe}"


def _ls(args: argparse.Namespace) -> int:
    from tradetower.history.catalog import fmt_intervals

    cache = _cache(args)
    entries = cache.entries()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return 0
    if not entries:
        print(f"the cache is empty ({cache.store.description})")
        return 0
    header = ("venue", "class", "symbol", "tf", "held", "empty", "gaps", "rows", "size", "status")
    rows = [
        (
            e.key.exchange,
            e.key.asset_class,
            e.key.symbol,
            e.key.timeframe,
            fmt_intervals(e.ranges, limit=2),
            str(len(e.empty_ranges)),
            str(len(e.data_quality)),
            f"{e.total_candles:,}",
            _size(e.total_bytes),
            e.status,
        )
        for e in entries
    ]
    _table(header, rows)
    print(f"\n{len(entries)} series in {cache.store.description}")
    print("empty: stretches the venue had no bars for; gaps: data-quality warnings")
    return 0


def _show(args: argparse.Namespace) -> int:
    from tradetower.history.catalog import fmt_intervals, fmt_ms

    summary = _cache(args).summary(args.venue, args.symbol, args.timeframe)
    e = summary.entry
    print(f"{e.key.id}  ({e.status}{': ' + e.error if e.error else ''})")
    if summary.first_ms is not None and summary.last_ms is not None:
        span = f"first {fmt_ms(summary.first_ms)}, last {fmt_ms(summary.last_ms)} UTC"
        print(f"  bars         {e.total_candles:,}  ({span})")
    else:
        print("  bars         0")
    periods = ", ".join(sorted(e.files)) or "-"
    print(f"  files        {len(e.files)} ({_size(e.total_bytes)}): {periods}")
    print(f"  held         {fmt_intervals(e.ranges, limit=10)}")
    print(f"  known empty  {fmt_intervals(e.empty_ranges, limit=10)}")
    print(f"  warnings     {len(summary.gaps)}")
    for gap in summary.gaps[:20]:
        print(f"    {fmt_ms(gap.start_ms)} → {fmt_ms(gap.end_ms)}  {gap.reason}")
    if len(summary.gaps) > 20:
        print(f"    ... and {len(summary.gaps) - 20} more")
    return 0


def _import(args: argparse.Namespace) -> int:
    from tradetower.history.catalog import fmt_ms

    cache = _cache(args)
    report = cache.import_file(
        args.file,
        venue=args.venue,
        symbol=args.symbol,
        timeframe=args.timeframe,
        asset_class=args.asset_class,
    )
    span = f"{fmt_ms(report.first_ms)} → {fmt_ms(report.last_ms)} UTC"
    print(f"imported {report.bars:,} bars ({span}) from {args.file} into {report.key.id}")
    entry = cache.catalog(report.key)
    if entry is not None:
        print(_held_line(entry))
    print(f"cache: {cache.store.description}")
    return 0


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
