"""FIFO matching of fills into round trips, in numba (see :mod:`simulator.trades`).

The same arithmetic, in the same order, as the plain-Python reference it replaced, so the
trades are identical to the last bit; it only avoids a Python object per lot and per row.
"""

import numpy as np
from numba import njit

QTY_RTOL = 1e-12  # a remainder at or below this share of its original is float residue


@njit(cache=True)
def fifo_match_nb(  # type: ignore[no-untyped-def]
    inst, side, qty, price, fee, time_ns, bar, n_inst
):
    """Rows of (lot, instrument, qty, exit time, exit bar, exit price, exit fee, entry fee):
    the closed trades in closing order, then the open lots per instrument (instruments in the
    order of their first fill). Returns the row arrays, the lot arrays (direction, price, time,
    bar) and the number of closed rows."""
    n = qty.shape[0]
    lot_dir = np.zeros(n, dtype=np.int64)
    lot_qty = np.zeros(n)
    lot_orig = np.zeros(n)
    lot_price = np.zeros(n)
    lot_fee = np.zeros(n)
    lot_time = np.zeros(n, dtype=np.int64)
    lot_bar = np.zeros(n, dtype=np.int64)
    lot_next = np.full(n, -1, dtype=np.int64)
    head = np.full(n_inst, -1, dtype=np.int64)
    tail = np.full(n_inst, -1, dtype=np.int64)
    first_seen = np.full(n_inst, -1, dtype=np.int64)
    n_lots = 0
    cap = 2 * n + 1
    r_lot = np.zeros(cap, dtype=np.int64)
    r_inst = np.zeros(cap, dtype=np.int64)
    r_qty = np.zeros(cap)
    r_time = np.zeros(cap, dtype=np.int64)
    r_bar = np.zeros(cap, dtype=np.int64)
    r_price = np.zeros(cap)
    r_exit_fee = np.zeros(cap)
    r_entry_fee = np.zeros(cap)
    n_rows = 0
    order = 0
    for i in range(n):
        k = inst[i]
        if first_seen[k] < 0:
            first_seen[k] = order
            order += 1
        s = side[i]
        fill_qty = qty[i]
        remaining = fill_qty
        while head[k] >= 0 and lot_dir[head[k]] != s and remaining > QTY_RTOL * fill_qty:
            lot = head[k]
            q = min(lot_qty[lot], remaining)
            r_lot[n_rows] = lot
            r_inst[n_rows] = k
            r_qty[n_rows] = q
            r_time[n_rows] = time_ns[i]
            r_bar[n_rows] = bar[i]
            r_price[n_rows] = price[i]
            r_exit_fee[n_rows] = fee[i] * q / fill_qty
            r_entry_fee[n_rows] = lot_fee[lot] * q / lot_orig[lot]
            n_rows += 1
            lot_qty[lot] -= q
            remaining -= q
            if lot_qty[lot] <= QTY_RTOL * lot_orig[lot]:
                head[k] = lot_next[lot]
                if head[k] < 0:
                    tail[k] = -1
        if remaining > QTY_RTOL * fill_qty:
            lot = n_lots
            n_lots += 1
            lot_dir[lot] = s
            lot_qty[lot] = remaining
            lot_orig[lot] = remaining
            lot_price[lot] = price[i]
            lot_fee[lot] = fee[i] * remaining / fill_qty
            lot_time[lot] = time_ns[i]
            lot_bar[lot] = bar[i]
            if tail[k] >= 0:
                lot_next[tail[k]] = lot
            else:
                head[k] = lot
            tail[k] = lot
    n_closed = n_rows
    for o in range(order):
        for k in range(n_inst):
            if first_seen[k] != o:
                continue
            lot = head[k]
            while lot >= 0:
                r_lot[n_rows] = lot
                r_inst[n_rows] = k
                r_qty[n_rows] = lot_qty[lot]
                r_entry_fee[n_rows] = lot_fee[lot] * lot_qty[lot] / lot_orig[lot]
                n_rows += 1
                lot = lot_next[lot]
    return (
        r_lot[:n_rows],
        r_inst[:n_rows],
        r_qty[:n_rows],
        r_time[:n_rows],
        r_bar[:n_rows],
        r_price[:n_rows],
        r_exit_fee[:n_rows],
        r_entry_fee[:n_rows],
        lot_dir[:n_lots],
        lot_price[:n_lots],
        lot_time[:n_lots],
        lot_bar[:n_lots],
        n_closed,
    )
