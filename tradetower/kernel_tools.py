"""Small numba helpers for writing action rows from a strategy kernel."""

import numpy as np

from tradetower import kernel_abi as K
from tradetower.jit_options import kernel_jit


@kernel_jit
def round_price_nb(price: float, tick: float, decimals: float) -> float:
    """Half-up to the tick (STRATEGIES.md §1): the one rounding rule of backtest and live."""
    if tick <= 0.0:
        return price
    return float(round(np.floor(price / tick + 0.5 + 1e-9) * tick, int(decimals)))


@kernel_jit
def floor_qty_nb(qty: float, lot: float, decimals: float) -> float:
    """Down to the lot step."""
    if lot <= 0.0:
        return qty
    return float(round(np.floor(qty / lot + 1e-9) * lot, int(decimals)))


@kernel_jit
def meets_min_nb(qty: float, price: float, min_qty: float, min_notional: float) -> bool:
    """An order the venue accepts: positive, at least ``min_qty`` and ``min_notional``."""
    if not qty > 0.0 or qty < min_qty:
        return False
    return not qty * price < min_notional - 1e-12


@kernel_jit
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
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
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


@kernel_jit
def cancel_tag_nb(actions: np.ndarray, row: int, inst: int, tag: float) -> int:
    """Cancel every open order of ``inst`` carrying ``tag`` (``inst`` < 0: any instrument)."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_CANCEL
    a[K.A_ID] = -1.0
    a[K.A_INST] = inst
    a[K.A_TAG] = tag
    return row + 1


@kernel_jit
def cancel_all_nb(actions: np.ndarray, row: int, inst: int) -> int:
    """Cancel every open order of ``inst`` (``inst`` < 0: every instrument)."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_CANCEL_ALL
    a[K.A_INST] = inst
    return row + 1


@kernel_jit
def arm_cross_nb(
    actions: np.ndarray, row: int, inst: int, level: float, up: bool, tag: float
) -> int:
    """Arm a trigger that fires when the price crosses ``level`` (up, or down)."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_ARM_CROSS
    a[K.A_INST] = inst
    a[K.A_SIDE] = 1.0 if up else -1.0
    a[K.A_PRICE] = level
    a[K.A_TAG] = tag
    return row + 1


@kernel_jit
def arm_trailing_nb(
    actions: np.ndarray,
    row: int,
    inst: int,
    reference: float,
    distance: float,
    long: bool,
    tag: float,
) -> int:
    """Arm a trailing trigger ``distance`` (a fraction) from a running peak (long) or trough."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_ARM_TRAILING
    a[K.A_INST] = inst
    a[K.A_SIDE] = 1.0 if long else -1.0
    a[K.A_PRICE] = reference
    a[K.A_QTY] = distance
    a[K.A_TAG] = tag
    return row + 1


@kernel_jit
def disarm_tag_nb(actions: np.ndarray, row: int, tag: float) -> int:
    """Disarm every trigger carrying ``tag``."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_DISARM
    a[K.A_ID] = -1.0
    a[K.A_TAG] = tag
    return row + 1


@kernel_jit
def set_timer_nb(actions: np.ndarray, row: int, due_ms: float, tag: float) -> int:
    """Fire a timer event at ``due_ms`` (epoch ms), carrying ``tag``."""
    if row >= actions.shape[0]:
        return row + 1  # no room: counted, not written (the engine stops the run, naming it)
    a = actions[row]
    a[:] = 0.0
    a[K.A_KIND] = K.A_SET_TIMER
    a[K.A_ID] = due_ms
    a[K.A_TAG] = tag
    return row + 1
