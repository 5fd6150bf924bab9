"""``prefetch_row`` is a hint: it compiles to the CPU's prefetch instruction and changes nothing,
whatever row it names."""

from __future__ import annotations

import platform

import numpy as np
import pytest
from numba import config, njit

from simulator.nb.prefetch import prefetch_row

pytestmark = pytest.mark.nojit  # also checked as plain Python (NUMBA_DISABLE_JIT=1)


@njit
def _hint_then_sum(arr: np.ndarray, i: int) -> float:
    prefetch_row(arr, i)
    total: float = arr.sum()
    return total


def test_a_prefetch_changes_nothing_even_past_the_end() -> None:
    cube = np.arange(60.0).reshape(4, 3, 5)
    before = cube.copy()
    assert _hint_then_sum(cube, 2) == before.sum()
    assert _hint_then_sum(cube, 10**9) == before.sum()  # no such row: still no fault
    assert _hint_then_sum(np.arange(5, dtype=np.int64), 3) == 10
    np.testing.assert_array_equal(cube, before)


@pytest.mark.skipif(
    bool(getattr(config, "DISABLE_JIT", False)) or platform.machine() not in ("x86_64", "AMD64"),
    reason="reads x86 machine code",
)
def test_it_compiles_to_a_prefetch_instruction() -> None:
    cube = np.zeros((4, 3, 5))
    _hint_then_sum(cube, 1)
    asm = _hint_then_sum.inspect_asm(_hint_then_sum.signatures[0])
    assert "prefetcht0" in asm
