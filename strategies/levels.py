"""Price levels shared by the grid family (Grid, BTD, Loop, Futures Grid): STRATEGIES.md §1."""

from __future__ import annotations

import math

import numpy as np

from tradetower.jit_options import kernel_jit


def geometric_levels(low: float, high: float, n: int) -> np.ndarray:
    """``p_i = low·(1+s)^i`` with ``s = (high/low)^(1/(N−1)) − 1``."""
    s = (high / low) ** (1.0 / (n - 1)) - 1.0
    return np.asarray(low * (1.0 + s) ** np.arange(n), dtype=np.float64)


def arithmetic_levels(low: float, high: float, n: int) -> np.ndarray:
    """``p_i = low + i·(high−low)/(N−1)``."""
    return np.asarray(low + np.arange(n) * (high - low) / (n - 1), dtype=np.float64)


def levels_from_step(low: float, high: float, step_pct: float) -> np.ndarray:
    """Given the step s: ``N = ⌊ln(high/low)/ln(1+s)⌋ + 1``; high snaps to ``p_{N−1}``."""
    s = step_pct / 100.0
    n = math.floor(math.log(high / low) / math.log(1.0 + s) + 1e-12) + 1
    return np.asarray(low * (1.0 + s) ** np.arange(n), dtype=np.float64)


@kernel_jit
def empty_level_nb(levels: np.ndarray, price: float) -> int:
    """The level nearest ``price``; a tie goes to the lower one."""
    best = 0
    for j in range(1, levels.shape[0]):
        if abs(levels[j] - price) < abs(levels[best] - price) - 1e-12:
            best = j
    return best
