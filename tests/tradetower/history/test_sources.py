"""make_source: venue names to history sources."""

from __future__ import annotations

import pytest

from tradetower.errors import DataValidationError
from tradetower.history.alpaca_source import AlpacaSource
from tradetower.history.ccxt_source import CcxtSource
from tradetower.history.sources import make_source


def test_alpaca_is_alpaca_py_even_though_ccxt_has_an_alpaca_id_too() -> None:
    source = make_source("alpaca", api_key="k", secret_key="s", feed="sip")
    assert isinstance(source, AlpacaSource)
    assert source.venue == "alpaca"


@pytest.mark.parametrize(("given", "venue"), [("coinbase", "coinbase"), (" Kraken ", "kraken")])
def test_ccxt_ids_go_through_ccxt(given: str, venue: str) -> None:
    source = make_source(given, max_retries=2)
    assert isinstance(source, CcxtSource)
    assert source.venue == venue
    assert source.asset_class("BTC-USD") == "crypto"


def test_unknown_venue_lists_valid_ones() -> None:
    with pytest.raises(DataValidationError) as caught:
        make_source("nasdaq")
    message = str(caught.value)
    assert message.startswith("unknown venue 'nasdaq': use alpaca or a ccxt exchange id, e.g. ")
    assert "alpaca, coinbase, kraken, binance, bitstamp" in message


def test_options_a_source_does_not_take_are_refused_naming_the_accepted_ones() -> None:
    with pytest.raises(DataValidationError) as caught:
        make_source("coinbase", feed="iex")
    assert str(caught.value) == (
        "coinbase: unknown option(s) feed; accepted: exchange, max_retries, backoff_s, sleep, "
        "now_ms, page_limit"
    )
    with pytest.raises(
        DataValidationError, match=r"alpaca: unknown option\(s\) exchange, page_limit"
    ):
        make_source("alpaca", exchange=None, page_limit=10)
