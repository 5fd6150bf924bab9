"""numpy's sum of a float64 array, compiled: the same floats as ``a.sum()``.

numpy adds a contiguous float64 array pairwise (halves split on a multiple of 8, blocks of at
most 128 summed in 8 interleaved lanes, fewer than 8 in order) onto its identity 0.0. A kernel
that reports a mean or a ratio of sums through this gives the figures numpy gives, bit for bit,
without a numpy call per figure."""

import numpy as np
from numba import njit

_BLOCK = 128  # numpy's PW_BLOCKSIZE


@njit(cache=True)
def numpy_sum_nb(a: np.ndarray) -> float:
    """``a.sum()`` for a 1-d float64 array, as numpy adds it.

    numpy recurses on the halves; this walks the same tree with a stack of its own (numba's
    cache cannot reload a recursive function), adding each left half's sum to its right's."""
    starts = np.empty(64, dtype=np.int64)  # a tree over 2**63 values is 57 levels deep
    sizes = np.empty(64, dtype=np.int64)
    stages = np.empty(64, dtype=np.int64)  # 0: new, 1: left half summed, 2: both
    lefts = np.empty(64)
    starts[0], sizes[0], stages[0] = 0, a.shape[0], 0
    top = 0
    res = 0.0
    while top >= 0:
        n = sizes[top]
        if n <= _BLOCK:
            res = _block(a, starts[top], n)
            top -= 1
            continue
        half = n // 2
        half -= half % 8
        stage = stages[top]
        if stage == 2:  # res: the right half's sum
            res = lefts[top] + res
            top -= 1
            continue
        if stage == 1:  # res: the left half's sum
            lefts[top] = res
            first, size = starts[top] + half, n - half
        else:
            first, size = starts[top], half
        stages[top] = stage + 1
        top += 1
        starts[top], sizes[top], stages[top] = first, size, 0
    return 0.0 + res


@njit(cache=True)
def _block(a: np.ndarray, start: int, n: int) -> float:
    """numpy's sum of at most 128 values: in order below 8, else in 8 interleaved lanes."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[start], a[start + 1], a[start + 2], a[start + 3]
    r4, r5, r6, r7 = a[start + 4], a[start + 5], a[start + 6], a[start + 7]
    i = start + 8
    stop = start + n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + n:
        res += a[i]
        i += 1
    return res
