"""The bars that hold a signal, found once before a run: the event loop then jumps from one to
the next (:func:`simulator.nb.loop.next_signal_nb`) without reading the codes in between."""

import numpy as np
from numba import njit

CHUNK = 8  # codes tested at once (an OR of the chunk, no early exit inside): 8 beat 16 and 32


@njit(cache=True)
def signal_bars_nb(signals: np.ndarray) -> np.ndarray:
    """The bars (ascending) where any instrument's code in ``signals`` [n, k] is non-zero,
    then ``n``: the end, so that a lookup past the last signal needs no test.

    For one instrument the codes are read a chunk at a time and only a chunk holding a code is
    looked into: a year of minutes with 14,500 signals in 0.13 ms, about what counting them took."""
    n = signals.shape[0]
    k = signals.shape[1]
    out = np.empty(n + 1, dtype=np.int64)  # only the first entries are ever written to
    m = 0
    if k == 1:
        codes = signals.reshape(n)
        t = 0
        while t + CHUNK <= n:
            hit = np.int64(0)
            for u in range(CHUNK):
                hit |= codes[t + u]
            if hit != 0:
                for u in range(CHUNK):
                    out[m] = t + u
                    m += codes[t + u] != 0  # (written on every bar, kept on a signal's)
            t += CHUNK
        while t < n:
            out[m] = t
            m += codes[t] != 0
            t += 1
    else:
        for t in range(n):
            for i in range(k):
                if signals[t, i] != 0:
                    out[m] = t
                    m += 1
                    break
    out[m] = n
    return out[: m + 1].copy()
