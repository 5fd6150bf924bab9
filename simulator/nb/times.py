"""Bar times inside the simulator.

The venue state keeps the data's own epoch integers (``MarketData.ticks``: seconds,
milliseconds, microseconds or nanoseconds, as the index holds them) and a scale, not a copy
converted to milliseconds: converting a year of minutes cost every run about 0.8 ms, and a run
reads a time only at its events. A bar's epoch milliseconds are ``times[t] * mul // div`` with
``(mul, div) = time_scale``: a floor division, as pandas converts to a coarser unit.
"""

import numpy as np

from simulator import state as S
from tradetower.jit_options import kernel_jit_inline

_MAX = np.iinfo(np.int64).max


@kernel_jit_inline
def bar_ms_nb(st: S.SimState, t: int) -> int:
    """Bar t's time in epoch milliseconds."""
    return st.times[t] * st.time_scale[0] // st.time_scale[1]


@kernel_jit_inline
def ticks_upto_ms_nb(st: S.SimState, ms: int) -> int:
    """The largest tick whose time in milliseconds is at most ``ms``: the bars at or before a
    time are those with ``times[t]`` up to it (int64's largest for ``S.NO_TIMER`` and for any
    time past what the ticks can hold). ``floor(T * mul / div) <= ms`` holds exactly when
    ``T * mul <= (ms + 1) * div - 1``."""
    mul = st.time_scale[0]
    div = st.time_scale[1]
    if ms >= _MAX // div - 1:
        return _MAX
    return ((ms + 1) * div - 1) // mul
