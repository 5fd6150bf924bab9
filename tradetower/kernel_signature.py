"""The numba signature every compiled strategy kernel is compiled with (see kernel_abi)."""

from numba import types

KERNEL_SIGNATURE = types.int64(
    types.float64[::1], types.float64[::1], types.float64[::1], types.float64[:, ::1]
)
"""``on_event_nb(params, state, event, actions) -> number of action rows written``."""
