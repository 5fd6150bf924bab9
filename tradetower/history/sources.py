"""Pick the history source for a venue name: ``"alpaca"`` or any ccxt exchange id."""

from __future__ import annotations

import inspect
from typing import Any

import ccxt  # type: ignore[import-untyped]

from tradetower.errors import DataValidationError
from tradetower.history.alpaca_source import AlpacaSource
from tradetower.history.ccxt_source import CcxtSource
from tradetower.history.source import HistorySource

#: Named in the error for an unknown venue, as examples (ccxt knows about a hundred).
EXAMPLE_VENUES = ("alpaca", "coinbase", "kraken", "binance", "bitstamp")


def make_source(venue: str, **options: Any) -> HistorySource:
    """The source for ``venue``, built with ``options`` (its constructor's keyword arguments).

    ``alpaca`` is Alpaca through alpaca-py even though ccxt also has an ``alpaca`` id; every
    other ccxt id goes through ccxt. Unknown venues and options are refused with the choices.
    """
    name = venue.strip().lower()
    if name == AlpacaSource.venue:
        _check_options(name, AlpacaSource, options)
        return AlpacaSource(**options)
    if name in ccxt.exchanges:
        _check_options(name, CcxtSource, options)
        return CcxtSource(name, **options)
    raise DataValidationError(
        f"unknown venue {venue!r}: use alpaca or a ccxt exchange id, e.g. "
        f"{', '.join(EXAMPLE_VENUES)} ({len(ccxt.exchanges)} ccxt ids in all)"
    )


def _check_options(venue: str, source: type[Any], options: dict[str, Any]) -> None:
    accepted = [
        name
        for name, parameter in inspect.signature(source).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        or (source is AlpacaSource and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataValidationError(
            f"{venue}: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
