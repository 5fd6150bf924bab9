"""The compiled exposure ratios keep exactly the finite values of numpy's ``|gross| / equity``,
in order, through zero, negative and missing equity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.nb.daily import finite_ratios_nb

VALUES = st.sampled_from([0.0, -0.0, 1.0, -2.5, 3e-300, 1e300, np.nan, np.inf, -np.inf, 7.0])


@settings(deadline=None)  # the first example compiles
@given(st.lists(st.tuples(VALUES, VALUES), max_size=40))
def test_equal_to_numpy(pairs: list[tuple[float, float]]) -> None:
    gross = np.array([g for g, _ in pairs], dtype=np.float64)
    equity = np.array([e for _, e in pairs], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.abs(gross) / equity
    np.testing.assert_array_equal(finite_ratios_nb(gross, equity), ratio[np.isfinite(ratio)])
