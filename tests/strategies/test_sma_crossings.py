"""The SMA crossover's signal kernel gives exactly the codes of its vectorised
reference (two cumulative-sum averages, then the strict crossing rule)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.sma_cross import BLOCK, crossings, sma, sma_crossings_nb


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 400),
    fast=st.integers(1, 30),
    extra=st.integers(1, 60),
    prices=st.sampled_from(["walk", "ticks", "ulps"]),
    holes=st.lists(st.integers(0, 399), max_size=3),
)
def test_the_kernel_equals_the_vectorised_reference(
    seed: int, n: int, fast: int, extra: int, prices: str, holes: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    if prices == "ticks":  # prices on a coarse tick: equal averages (no crossing) happen often
        close = np.round(close, 0)
    elif prices == "ulps":  # averages a few ulp apart: the kernel must take the exact quotients
        close = 100.0 + rng.integers(-3, 4, n) * np.spacing(100.0)
    close[[h for h in holes if h < n]] = np.nan
    slow = fast + extra
    out = np.full(n, 7, dtype=np.int64)
    sma_crossings_nb(close, fast, slow, out)
    np.testing.assert_array_equal(out, crossings(sma(close, fast), sma(close, slow)))


def test_a_golden_cross_then_a_death_cross() -> None:
    close = np.array([5.0, 4.0, 3.0, 2.0, 6.0, 7.0, 8.0, 1.0, 0.5, 0.2])
    out = np.zeros(close.shape[0], dtype=np.int64)
    sma_crossings_nb(close, 1, 3, out)
    assert list(out) == [0, 0, 0, 0, 1, 0, 0, -1, 0, 0]


@pytest.mark.parametrize("base", [0.1, 1.0, 100.0])
def test_averages_an_ulp_apart_are_ordered_as_their_quotients(base: float) -> None:
    """Products with the reciprocals misorder averages a few ulp apart (about one series in
    ten here): the kernel must fall back to the exact quotients there."""
    for seed in range(60):
        rng = np.random.default_rng(seed)
        fast = int(rng.integers(2, 12))
        slow = fast + int(rng.integers(1, 20))
        close = base + rng.integers(-3, 4, 300) * np.spacing(base)
        out = np.zeros(close.shape[0], dtype=np.int64)
        sma_crossings_nb(close, fast, slow, out)
        expected = crossings(sma(close, fast), sma(close, slow))
        np.testing.assert_array_equal(out, expected, err_msg=f"seed {seed}")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(BLOCK - 60, 3 * BLOCK + 60),
    fast=st.integers(1, 40),
    slow=st.sampled_from([2, 50, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7]),
    prices=st.sampled_from(["walk", "ticks"]),
    hole=st.integers(0, 4 * BLOCK),
)
def test_blocks_join_without_a_seam(
    seed: int, n: int, fast: int, slow: int, prices: str, hole: int
) -> None:
    """The kernel takes BLOCK bars at a time: runs over several blocks, with windows shorter
    and longer than a block and crossings on either side of a block's edge, give the
    reference's codes too."""
    fast = min(fast, slow - 1)
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    if prices == "ticks":
        close = np.round(close, 0)
    if hole < n:
        close[hole] = np.nan  # every sum after it is NaN: no side, no crossing
    out = np.full(n, 7, dtype=np.int64)
    sma_crossings_nb(close, fast, slow, out)
    np.testing.assert_array_equal(out, crossings(sma(close, fast), sma(close, slow)))


@pytest.mark.parametrize(("fast", "slow"), [(1, 2), (1, 4), (1, BLOCK + 1)])
def test_crossings_on_the_first_and_last_bars_of_a_block(fast: int, slow: int) -> None:
    """A zigzag around its average crosses on every bar, so on each block's first and last
    bar too, where the side of the bar before comes from the previous block."""
    n = 3 * BLOCK + 5
    close = 100.0 + np.where(np.arange(n) % 2 == 0, 1.0, -1.0) + np.arange(n) * 1e-3
    expected = crossings(sma(close, fast), sma(close, slow))
    edges = [BLOCK - 1, BLOCK, 2 * BLOCK - 1, 2 * BLOCK]
    assert all(expected[e] != 0 for e in edges if e >= slow)
    out = np.zeros(n, dtype=np.int64)
    sma_crossings_nb(close, fast, slow, out)
    np.testing.assert_array_equal(out, expected)
