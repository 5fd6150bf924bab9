"""The intrabar path: where within a bar a price level is first touched.

A bar's path is four points: open, first extreme, second extreme, close. A position on the
path is a float in [0, 3]: 0 is the open, and s-1+f is the fraction f of segment s.
"""

import numpy as np

from tradetower.jit_options import kernel_jit


@kernel_jit
def set_path_nb(path: np.ndarray, o: float, h: float, lo: float, c: float, adverse: int) -> None:
    """Fill ``path`` (4 floats). ``adverse`` is +1 (low first), -1 (high first) or 0 (nearer)."""
    path[0] = o
    path[3] = c
    low_first = (o - lo) <= (h - o)
    if adverse > 0:
        low_first = True
    elif adverse < 0:
        low_first = False
    if low_first:
        path[1] = lo
        path[2] = h
    else:
        path[1] = h
        path[2] = lo


@kernel_jit
def hit_down_nb(path: np.ndarray, level: float) -> float:
    """First position where the price is at or below ``level``; -1 if never."""
    if path[0] <= level:
        return 0.0
    for s in range(1, 4):
        a = path[s - 1]
        b = path[s]
        if b <= level:
            return s - 1 + (a - level) / (a - b)
    return -1.0


@kernel_jit
def hit_up_nb(path: np.ndarray, level: float) -> float:
    """First position where the price is at or above ``level``; -1 if never."""
    if path[0] >= level:
        return 0.0
    for s in range(1, 4):
        a = path[s - 1]
        b = path[s]
        if b >= level:
            return s - 1 + (level - a) / (b - a)
    return -1.0


@kernel_jit
def hit_down_from_nb(path: np.ndarray, level: float, start: float) -> float:
    """Like :func:`hit_down_nb`, on the part of the path at or after position ``start``."""
    if start <= 0.0:
        return hit_down_nb(path, level)
    for s in range(1, 4):
        if s <= start:
            continue
        a = path[s - 1]
        b = path[s]
        lo = s - 1.0
        if start > lo:
            a = a + (b - a) * (start - lo)
            lo = start
        if a <= level:
            return lo
        if b <= level:
            return lo + (a - level) / (a - b) * (s - lo)
    return -1.0


@kernel_jit
def hit_up_from_nb(path: np.ndarray, level: float, start: float) -> float:
    """Like :func:`hit_up_nb`, on the part of the path at or after position ``start``."""
    if start <= 0.0:
        return hit_up_nb(path, level)
    for s in range(1, 4):
        if s <= start:
            continue
        a = path[s - 1]
        b = path[s]
        lo = s - 1.0
        if start > lo:
            a = a + (b - a) * (start - lo)
            lo = start
        if a >= level:
            return lo
        if b >= level:
            return lo + (level - a) / (b - a) * (s - lo)
    return -1.0


@kernel_jit
def trail_hit_nb(
    path: np.ndarray, ref: float, dist: float, direction: int
) -> tuple[float, float, float]:
    """A trailing trigger along the path.

    ``direction`` +1 protects a long: the reference is a running peak and it fires when the price
    falls ``dist`` (a fraction) below it. -1 mirrors it for a short. Returns (position, level,
    reference at the end of the bar); position is -1 when it does not fire.
    """
    if direction > 0:
        peak = ref
        if path[0] <= peak * (1.0 - dist):
            return 0.0, path[0], peak
        peak = max(peak, path[0])
        for s in range(1, 4):
            a = path[s - 1]
            b = path[s]
            if b > a:
                peak = max(peak, b)
            else:
                level = peak * (1.0 - dist)
                if b <= level:
                    return s - 1 + (a - level) / (a - b), level, peak
        return -1.0, peak * (1.0 - dist), peak
    trough = ref
    if path[0] >= trough * (1.0 + dist):
        return 0.0, path[0], trough
    trough = min(trough, path[0])
    for s in range(1, 4):
        a = path[s - 1]
        b = path[s]
        if b < a:
            trough = min(trough, b)
        else:
            level = trough * (1.0 + dist)
            if b >= level:
                return s - 1 + (level - a) / (b - a), level, trough
    return -1.0, trough * (1.0 + dist), trough
