"""The compiled sum gives numpy's own floats for float64 arrays of every length (its pairwise
order matters: a sum in plain order differs in the last bits for most long arrays)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simulator.nb.pairwise import numpy_sum_nb


@settings(max_examples=300, deadline=None)
@given(
    values=hnp.arrays(
        np.float64,
        st.integers(0, 2_000),
        elements=st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    )
)
def test_the_sum_is_numpys_bit_for_bit(values: np.ndarray) -> None:
    got = numpy_sum_nb(values)
    assert np.float64(got).tobytes() == values.sum().tobytes()


@pytest.mark.nojit
def test_lengths_around_numpys_blocks() -> None:
    """Every length up to past two blocks, of values whose plain-order sum differs."""
    rng = np.random.default_rng(3)
    differs = 0
    for n in range(0, 300):
        a = rng.normal(0, 1, n) * 10.0 ** rng.integers(-6, 6, n)
        assert np.float64(numpy_sum_nb(a)).tobytes() == a.sum().tobytes(), n
        plain = 0.0
        for x in a:
            plain += x
        differs += plain != a.sum()
    assert differs > 50  # the order is what is tested: a plain-order sum would not pass


@pytest.mark.nojit
def test_an_empty_sum_and_negative_zero() -> None:
    assert numpy_sum_nb(np.zeros(0)) == 0.0
    assert np.float64(numpy_sum_nb(np.array([-0.0]))).tobytes() == np.array([-0.0]).sum().tobytes()
