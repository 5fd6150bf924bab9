"""A signal strategy's order and fill logs start at about a row per signal, within a bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk

from simulator import engine as E
from simulator import state as S
from simulator.nb.loop import needs_growth_nb
from simulator.nb.signal_bars import signal_bars_nb
from strategies import SmaCross


def test_an_sma_run_never_grows_its_presized_logs(eth_btc: pd.DataFrame) -> None:
    run = E.prepare_run(
        SmaCross(fast=5, slow=20), eth_btc, None, None, None, "ASSET", None, {"capacity": 16}
    )
    rows = run.driver.state.orders.shape[0]
    signals = int(np.count_nonzero(run.driver.state.signals))
    assert rows >= signals > 16
    run.drive("compiled")
    st = run.driver.state
    assert 0 < st.counters[S.C_N_ORDERS] <= signals
    assert st.orders.shape[0] == rows and st.fills.shape[0] == rows  # no doubling on the way


def test_a_code_on_every_bar_does_not_size_a_log_per_bar() -> None:
    dense = signal_bars_nb(np.ones((2_000_000, 1), dtype=np.int64))
    assert E._log_rows(1024, dense) == E.MAX_PRESIZED_ROWS
    assert E._log_rows(1024, signal_bars_nb(np.zeros((500, 1), dtype=np.int64))) == 1024
    assert E._log_rows(1024, None) == 1024
    assert E._log_rows(500_000, dense) == 500_000  # an explicit capacity still wins
    some = np.zeros((10_000, 1), dtype=np.int64)
    some[::10] = 1
    assert E._log_rows(16, signal_bars_nb(some)) == 1_000 + 250 + 256


@pytest.mark.parametrize("max_actions", [8, 256, 5_000])
def test_a_fresh_state_needs_no_growth_before_its_first_event(max_actions: int) -> None:
    """Every log starts with the headroom the loop checks before each event, so no run stops
    to grow its logs before its first event; one that arms no trigger and sets no timer never
    grows those two logs at all."""
    run = E.prepare_run(
        SmaCross(fast=5, slow=20),
        random_walk(2_000, seed=4),
        None,
        None,
        None,
        "ASSET",
        None,
        {"max_actions": max_actions},
    )
    st = run.driver.state
    assert not needs_growth_nb(st)
    shapes = [st.trig.shape, st.timers.shape]
    run.drive("compiled")
    st = run.driver.state
    assert st.counters[S.C_N_ORDERS] > 20
    assert [st.trig.shape, st.timers.shape] == shapes
