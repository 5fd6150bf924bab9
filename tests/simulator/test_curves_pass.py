"""The one-pass rebuild of positions, equity and exposure from the fill log gives exactly the
floats of the numpy formulation it replaced, for one instrument or many, with funding flows,
starting holdings, missing closes and a fill log out of bar order."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import state as S
from simulator.result import curve_of, fill_log, positions_and_equity, positions_of_log


def reference(fills, n_fills, cflow, ohlcv, cash0, initial_pos):  # type: ignore[no-untyped-def]
    n, k = ohlcv.shape[:2]
    f = fills[:n_fills]
    bars = f[:, S.F_BAR].astype(np.int64)
    signed = f[:, S.F_SIDE] * f[:, S.F_QTY]
    cash_delta = cflow.copy() if len(cflow) == n else np.zeros(n)
    np.add.at(cash_delta, bars, -signed * f[:, S.F_PRICE] - f[:, S.F_FEE])
    pos_delta = np.zeros((n, k))
    np.add.at(pos_delta, (bars, f[:, S.F_INST].astype(np.int64)), signed)
    pos_delta[0] += initial_pos
    running = np.cumsum(pos_delta, axis=0)
    pos = np.where(np.abs(running) < 1e-12, 0.0, running)
    cash = cash0 + np.cumsum(cash_delta)
    closes = pd.DataFrame(ohlcv[:, :, 3]).ffill().fillna(0.0).to_numpy()
    held = np.zeros(n)
    for i in range(k):  # left to right, as the pass adds them
        held = held + pos[:, i] * closes[:, i]
    equity = cash + held
    gross = np.abs(pos * closes).sum(axis=1)
    return pos, equity, gross, (np.abs(pos) > 0).any(axis=1)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 40),
    k=st.sampled_from([1, 2, 3, 9]),
    n_fills=st.integers(0, 60),
    funding=st.booleans(),
    shuffled=st.booleans(),
)
def test_the_pass_equals_the_numpy_formulation(
    seed: int, n: int, k: int, n_fills: int, funding: bool, shuffled: bool
) -> None:
    rng = np.random.default_rng(seed)
    closes = 100.0 + rng.normal(0, 5, (n, k))
    closes[rng.random((n, k)) < 0.2] = np.nan  # missing bars, some before the first close
    ohlcv = np.zeros((n, k, 5))
    ohlcv[:, :, 3] = closes
    fills = np.zeros((n_fills + 3, S.N_FILL))  # spare rows past the log, never read
    fills[:n_fills, S.F_BAR] = np.sort(rng.integers(0, n, n_fills))
    fills[:n_fills, S.F_INST] = rng.integers(0, k, n_fills)
    fills[:n_fills, S.F_SIDE] = rng.choice([-1.0, 1.0], n_fills)
    fills[:n_fills, S.F_QTY] = rng.choice([0.1, 0.3, 1.0 / 3.0, 2.0], n_fills)
    fills[:n_fills, S.F_PRICE] = rng.uniform(90, 110, n_fills)
    fills[:n_fills, S.F_FEE] = rng.uniform(0, 0.2, n_fills)
    fills[n_fills:] = 7.0
    cflow = rng.normal(0, 1, n) if funding else np.zeros(0)
    start = rng.choice([0.0, 0.5], k)
    expected = reference(fills, n_fills, cflow, ohlcv, 1_000.0, start)
    log = fills
    if shuffled and n_fills > 1:  # the same fills, bars out of order (each bar's own in order)
        order = np.concatenate([np.flatnonzero(fills[:n_fills, S.F_BAR] == b) for b in range(n)])
        by_bar = fills[order]
        blocks = np.split(by_bar, np.flatnonzero(np.diff(by_bar[:, S.F_BAR])) + 1)
        log = np.concatenate([*blocks[::-1], fills[n_fills:]])
    state = SimpleNamespace(
        ohlcv=ohlcv, fills=log, counters=np.array([0] * S.N_COUNTERS), cflow=cflow
    )
    state.counters[S.C_N_FILLS] = n_fills
    got = positions_and_equity(state, 1_000.0, start)  # type: ignore[arg-type]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    # With the market's contiguous closes (what the engine passes): the same floats.
    rows = np.ascontiguousarray(ohlcv[:, :, 3].T)
    got = positions_and_equity(state, 1_000.0, start, closes=rows)  # type: ignore[arg-type]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)

    # What a backtest keeps (``curve_of``): the equity, the count of bars in a position, the
    # mean of the finite exposure ratios; one instrument's positions rebuilt from the log when
    # read. Several instruments take numpy's mean of the ratios; one adds them up in its pass
    # (the sum's order differs from numpy's pairwise one: the same to rounding).
    pos, equity, gross, in_pos = expected
    ordered = fill_log(state)  # type: ignore[arg-type]
    curve = curve_of(state, 1_000.0, start, ordered, rows)  # type: ignore[arg-type]
    np.testing.assert_array_equal(curve.equity, equity)
    assert curve.bars_in_position == int(np.count_nonzero(in_pos))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(gross) / equity
    finite = ratio[np.isfinite(ratio)]
    assert curve.finite == (len(finite) == n)
    if not len(finite):
        assert curve.exposure_mean is None
    elif k == 1:
        assert curve.exposure_mean == pytest.approx(float(finite.mean()), rel=1e-13, abs=0.0)
    else:
        assert curve.exposure_mean == float(finite.mean())
    if k == 1:
        assert curve.positions is None
        np.testing.assert_array_equal(positions_of_log(ordered, n, float(start[0])), pos)
    else:
        assert curve.positions is not None
        np.testing.assert_array_equal(curve.positions, pos)


@pytest.mark.nojit
def test_the_exposure_mean_leaves_out_a_zero_equity() -> None:
    """Held 1 unit from the start against -100 of cash: the equity is 0 at the first close
    (the ratio is infinite, left out) and -50 at the second (kept, as numpy gives it)."""
    closes = np.array([[100.0, 50.0, np.nan]])
    ohlcv = np.zeros((3, 1, 5))
    ohlcv[:, 0, 3] = closes[0]
    state = SimpleNamespace(
        ohlcv=ohlcv, fills=np.zeros((0, S.N_FILL)), counters=np.zeros(S.N_COUNTERS, np.int64)
    )
    state.cflow = np.zeros(0)
    log = fill_log(state)  # type: ignore[arg-type]
    curve = curve_of(state, -100.0, np.array([1.0]), log, closes)  # type: ignore[arg-type]
    np.testing.assert_array_equal(curve.equity, [0.0, -50.0, -50.0])
    assert curve.exposure_mean == -1.0  # |-50| / -50 at the last two bars
    assert curve.bars_in_position == 3
    assert not curve.finite  # so the metrics check the equity for NaN themselves
    _, equity, gross, _ = positions_and_equity(state, -100.0, np.array([1.0]))  # type: ignore[arg-type]
    with np.errstate(divide="ignore"):
        ratio = np.abs(gross) / equity
    assert curve.exposure_mean == float(ratio[np.isfinite(ratio)].mean())


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 3_000),
    n_fills=st.integers(0, 200),
    funding=st.booleans(),
    gaps=st.booleans(),
)
def test_the_exposure_sum_is_the_ratios_added_up(
    seed: int, n: int, n_fills: int, funding: bool, gaps: bool
) -> None:
    """The backtest's pass (equity and the exposure ratios added up, none written) gives the
    equity and bars in a position of the pass that writes the gross exposure out, and counts
    the finite ratios of the two; its sum is within the rounding bound of a sum in order
    (n·eps of the sum of magnitudes) of the exact sum (``math.fsum``)."""
    from simulator.nb.curves import equity_exposure_nb, one_instrument_nb

    rng = np.random.default_rng(seed)
    closes = 100.0 + np.cumsum(rng.normal(0, 1, n))
    if gaps:
        closes[rng.random(n) < 0.1] = np.nan
    fills = np.zeros((n_fills, S.N_FILL))
    fills[:, S.F_BAR] = np.sort(rng.integers(0, n, n_fills))
    fills[:, S.F_SIDE] = rng.choice([-1.0, 1.0], n_fills)
    fills[:, S.F_QTY] = rng.uniform(0.01, 3.0, n_fills)
    fills[:, S.F_PRICE] = rng.uniform(90, 110, n_fills)
    fills[:, S.F_FEE] = rng.uniform(0, 0.2, n_fills)
    cflow = rng.normal(0, 1, n) if funding else np.zeros(0)
    cash0, start = float(rng.choice([-300.0, 0.0, 50.0, 1_000.0])), float(rng.choice([0.0, 2.0]))
    equity, gross = np.empty(n), np.empty(n)
    held = one_instrument_nb(fills, n_fills, cflow, closes, cash0, start, equity, gross,
                             np.empty((0, 1)))  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = gross / equity
    got_equity = np.empty(n)
    holding, total, count = equity_exposure_nb(
        fills, n_fills, cflow, closes, cash0, start, got_equity
    )
    np.testing.assert_array_equal(got_equity, equity)
    assert holding == held
    finite = ratios[np.isfinite(ratios)]
    assert count == len(finite)
    bound = len(finite) * np.finfo(np.float64).eps * float(np.abs(finite).sum())
    assert abs(total - math.fsum(finite.tolist())) <= bound
