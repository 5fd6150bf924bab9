"""The compiled-kernel driver: the whole run stays inside numba.

The kernel arrives as an argument typed ``FunctionType`` with the ABI's fixed signature, and
the driver itself is compiled with an explicit signature and ``cache=True``: one compiled
driver serves every strategy kernel and survives across processes. Compiling happens at import,
so import this module lazily.
"""

import numpy as np
from numba import njit, typeof, types

from simulator import state as S
from simulator.nb.loop import next_event_inline_nb
from simulator.nb.orders import apply_actions_inline_nb
from tradetower import kernel_abi as K
from tradetower.jit_options import NO_NRT
from tradetower.kernel_signature import KERNEL_SIGNATURE

KERNEL_TYPE = types.FunctionType(KERNEL_SIGNATURE)


def _state_type() -> types.Type:
    from tradetower.kernel_abi import N_EVENT

    sample = S.allocate(
        np.zeros((2, 1, 5)),
        np.zeros(2, dtype=np.int64),
        np.zeros((1, S.N_INST)),
        np.zeros(S.N_PARAMS),
        np.zeros((2, 1)),
        np.zeros((2, 1), dtype=np.int64),
        capacity=8,
    )
    assert sample.pending.shape[1] == N_EVENT
    state_type: types.Type = typeof(sample)  # type: ignore[no-untyped-call]
    return state_type


STATE_TYPE = _state_type()


@njit(
    types.int64(
        STATE_TYPE,
        KERNEL_TYPE,
        types.float64[::1],
        types.float64[::1],
        types.float64[::1],
        types.float64[:, ::1],
        types.int64,
    ),
    cache=True,
    **NO_NRT,
)
def run_kernel_nb(st, kernel, kparams, kstate, ev, actions, wanted):  # type: ignore[no-untyped-def]
    """Drive ``kernel`` until the data ends (EV_END), a log must grow (EV_BUFFER_FULL), or the
    kernel asked for more actions than ``actions`` holds (EV_ACTIONS_OVERFLOW). ``wanted``: the
    bit mask of the event types the kernel is called for (``KernelStrategy.event_mask``)."""
    while True:
        et = next_event_inline_nb(st, ev)
        if et == K.EV_END or et == K.EV_BUFFER_FULL:
            return et
        if (wanted >> et) & 1 == 0:
            continue
        n = kernel(kparams, kstate, ev, actions)
        if n > actions.shape[0]:
            return K.EV_ACTIONS_OVERFLOW  # the rows past the buffer were never written
        if n > 0:
            apply_actions_inline_nb(st, actions, n)
