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
from simulator.nb.orders import apply_actions_inline_nb, apply_actions_nb
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
def run_kernel_nb(st, kernel, kparams, kstate, ev, actions, n_first):  # type: ignore[no-untyped-def]
    """Carry out the first ``n_first`` rows of ``actions``, then drive ``kernel`` until the data
    ends (EV_END), a log must grow (EV_BUFFER_FULL), the kernel asked for more actions than
    ``actions`` holds (EV_ACTIONS_OVERFLOW) or it handed the event in ``ev`` back to the
    caller (EV_HANDED_BACK, the Python driver: see :func:`step`)."""
    if n_first > 0:
        apply_actions_nb(st, actions, n_first)
    while True:
        et = next_event_inline_nb(st, ev)
        if et == K.EV_END or et == K.EV_BUFFER_FULL:
            return et
        n = kernel(kparams, kstate, ev, actions)
        if n == K.HAND_BACK:
            return K.EV_HANDED_BACK
        if n > actions.shape[0]:
            return K.EV_ACTIONS_OVERFLOW  # the rows past the buffer were never written
        if n > 0:
            apply_actions_inline_nb(st, actions, n)


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def hand_back_nb(kparams, kstate, ev, actions):  # type: ignore[no-untyped-def]
    """The Python driver's kernel: hands every event back to Python."""
    return K.HAND_BACK


_NOTHING = np.zeros(0)


def step(st: S.SimState, actions: np.ndarray, n_actions: int, ev: np.ndarray) -> int:
    """The Python path's one call per event: carry out the last reaction, then write the next
    event into ``ev`` and return its type (or EV_END, EV_BUFFER_FULL). It is the compiled
    driver with :func:`hand_back_nb` as the kernel, so one compiled copy of the event loop
    (the longest compile of the simulator) serves both paths."""
    et: int = run_kernel_nb(st, hand_back_nb, _NOTHING, _NOTHING, ev, actions, n_actions)
    return int(ev[K.E_TYPE]) if et == K.EV_HANDED_BACK else et
