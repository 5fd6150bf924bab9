"""A kernel that names the events it acts on (``kernel_events``) is called for those alone, in
the compiled loop, on the Python driver and in sweeps alike; the SMA crossover, which acts on
signals only, trades exactly as when it was called for every event."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk
from numba import njit

from simulator import backtest
from strategies import SmaCross
from tradetower import kernel_abi as K
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.jit_options import NO_NRT
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import place_nb
from tradetower.strategy import KernelStrategy


@njit(KERNEL_SIGNATURE, **NO_NRT)
def _count_and_buy_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    """Counts each event type it is given (state[type]); buys once on its first signal."""
    etype = int(event[K.E_TYPE])
    state[etype] += 1.0
    if etype == K.EV_SIGNAL and state[K.EV_SIGNAL] == 1.0:
        inst = int(event[K.E_INST])
        return place_nb(actions, 0, inst, 1.0, K.MARKET, np.nan, params[0], 0.0, False, False)
    return 0


class _Counter(KernelStrategy):
    name = "counter"
    kernel = _count_and_buy_nb

    def __init__(self, events: tuple[int, ...] | None) -> None:
        super().__init__()
        self.events = events

    def event_mask(self) -> int:  # type: ignore[override]  # per instance, for the test
        return K.event_mask(self.events)

    @property
    def params(self) -> np.ndarray:
        return np.array([0.5])

    def initial_state(self, data: MarketData) -> np.ndarray:
        return np.zeros(K.EV_STOP + 1)

    def signals(self, data: MarketData) -> np.ndarray:
        codes = np.zeros((data.n_bars, 1), dtype=np.int64)
        codes[5::40, 0] = 1
        return codes


def _counts(strategy: _Counter) -> dict[str, int]:
    names = {K.EV_START: "start", K.EV_FILL: "fill", K.EV_SIGNAL: "signal", K.EV_STOP: "stop"}
    return {name: int(strategy.state[e]) for e, name in names.items()}


@pytest.mark.parametrize("mode", ["compiled", "python"])
def test_a_kernel_is_called_only_for_the_events_it_names(mode: Any) -> None:
    everything = _Counter(None)
    r_all = backtest(everything, random_walk(400, seed=11), mode=mode, cash=1_000.0)
    assert _counts(everything) == {"start": 1, "fill": 1, "signal": 10, "stop": 1}
    signals_only = _Counter((K.EV_SIGNAL,))
    r_sig = backtest(signals_only, random_walk(400, seed=11), mode=mode, cash=1_000.0)
    assert _counts(signals_only) == {"start": 0, "fill": 0, "signal": 10, "stop": 0}
    # The fill still happens; only the call that would have told the kernel is left out.
    pd.testing.assert_frame_equal(r_all.fills, r_sig.fills)
    fills_only = _Counter((K.EV_FILL, K.EV_STOP))
    r_fill = backtest(fills_only, random_walk(400, seed=11), mode=mode, cash=1_000.0)
    assert _counts(fills_only) == {"start": 0, "fill": 0, "signal": 0, "stop": 1}
    assert r_fill.fills.empty  # it never saw the signal it would have bought on


def test_sma_cross_on_signals_alone_trades_as_when_told_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars = random_walk(3_000, seed=3)
    perp = Instrument(symbol="ASSET", asset_class="CRYPTO_FUTURES", leverage=2.0)
    assert SmaCross.event_mask() == 1 << K.EV_SIGNAL
    for reverse, inst in ((False, None), (True, perp)):
        masked = backtest(SmaCross(fast=5, slow=20, reverse=reverse), bars, instrument=inst)
        with monkeypatch.context() as m:
            m.setattr(SmaCross, "kernel_events", None)
            told = backtest(SmaCross(fast=5, slow=20, reverse=reverse), bars, instrument=inst)
        assert masked.metrics["n_orders"] > 50
        pd.testing.assert_frame_equal(masked.orders, told.orders)
        pd.testing.assert_frame_equal(masked.fills, told.fills)
        pd.testing.assert_series_equal(masked.equity, told.equity)


def test_event_masks_name_only_delivered_events() -> None:
    assert K.event_mask(None) == K.ALL_EVENTS
    assert K.event_mask((K.EV_FILL, K.EV_SIGNAL)) == (1 << K.EV_FILL) | (1 << K.EV_SIGNAL)
    assert K.wants_event(K.ALL_EVENTS, K.EV_STOP)
    assert not K.wants_event(1 << K.EV_FILL, K.EV_SIGNAL)
    for bad in (K.EV_NONE, K.EV_END, K.EV_BUFFER_FULL, 42):
        with pytest.raises(ValueError, match="not an event type"):
            K.event_mask((bad,))
