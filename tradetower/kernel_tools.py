"""Small numba helpers for writing action rows from a strategy kernel."""

import numpy as np
from numba import njit

from tradetower import kernel_abi as K


@njit(cache=True)
def place_nb(
    actions: np.ndarray,
    row: int,
    inst: int,
    side: float,
    order_type: int,
    price: float,
    qty: float,
    tag: float,
    fraction: bool,
    reduce_only: bool,
) -> int:
    """Write a place-order action at ``row``; returns the next free row."""
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_PLACE
    a[K.A_INST] = inst
    a[K.A_SIDE] = side
    a[K.A_TYPE] = order_type
    a[K.A_PRICE] = price
    a[K.A_QTY] = qty
    a[K.A_TAG] = tag
    a[K.A_SIZE_MODE] = K.SIZE_FRACTION if fraction else K.SIZE_UNITS
    a[K.A_REDUCE_ONLY] = 1.0 if reduce_only else 0.0
    return row + 1
