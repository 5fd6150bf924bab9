"""Instrument rounding inside kernels; mirrors :class:`tradetower.domain.Instrument`."""

import numpy as np
from numba import njit


@njit(cache=True)
def round_price_nb(price: float, tick: float, decimals: float) -> float:
    """Half-up to the tick."""
    if tick <= 0.0:
        return price
    return round(np.floor(price / tick + 0.5 + 1e-9) * tick, int(decimals))


@njit(cache=True)
def floor_qty_nb(qty: float, lot: float, decimals: float) -> float:
    """Down to the lot step."""
    if lot <= 0.0:
        return qty
    return round(np.floor(qty / lot + 1e-9) * lot, int(decimals))
