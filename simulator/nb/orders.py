"""Order, trigger and timer bookkeeping: placement, cancellation, and the skip bounds."""

import numpy as np

from simulator import state as S
from simulator.nb.rounding import floor_qty_nb, round_price_nb
from simulator.nb.times import bar_ms_nb
from tradetower import kernel_abi as K
from tradetower import risk_nb as R
from tradetower.jit_options import kernel_jit, kernel_jit_inline


@kernel_jit_inline
def equity_nb(st: S.SimState) -> float:
    eq = st.account[S.AC_CASH]
    for i in range(st.pos.shape[0]):
        q = st.pos[i, S.PS_QTY]
        if q != 0.0:
            eq += q * st.pos[i, S.PS_MARK]
    return eq


@kernel_jit_inline
def write_event_nb(
    st: S.SimState,
    ev: np.ndarray,
    etype: int,
    i: int,
    oid: float,
    side: float,
    price: float,
    qty: float,
    fee: float,
    code: float,
    remaining: float,
    tag: float,
) -> None:
    t = st.counters[S.C_BAR]
    n = st.times.shape[0]
    tc = min(max(t, 0), n - 1)
    ev[:] = 0.0
    ev[K.E_TYPE] = etype
    ev[K.E_BAR] = t
    ev[K.E_INST] = i
    ev[K.E_ID] = oid
    ev[K.E_SIDE] = side
    ev[K.E_PRICE] = price
    ev[K.E_QTY] = qty
    ev[K.E_FEE] = fee
    ev[K.E_CODE] = code
    ev[K.E_REMAINING] = remaining
    ev[K.E_TAG] = tag
    ev[K.E_TIME] = bar_ms_nb(st, tc)
    if i >= 0:
        ev[K.E_MARK] = st.pos[i, S.PS_MARK]
        ev[K.E_POS_QTY] = st.pos[i, S.PS_QTY]
    ev[K.E_CASH] = st.account[S.AC_CASH]
    ev[K.E_FREE] = st.account[S.AC_CASH] - st.account[S.AC_LOCKED]
    ev[K.E_EQUITY] = equity_nb(st)


@kernel_jit_inline
def push_pending_nb(
    st: S.SimState,
    etype: int,
    i: int,
    oid: float,
    side: float,
    price: float,
    qty: float,
    code: float,
    remaining: float,
    tag: float,
) -> None:
    tail = st.counters[S.C_PEND_TAIL]
    write_event_nb(st, st.pending[tail], etype, i, oid, side, price, qty, 0.0, code, remaining, tag)
    st.counters[S.C_PEND_TAIL] = tail + 1


@kernel_jit
def update_bounds_nb(st: S.SimState) -> None:
    """Recompute, per instrument, the highest level that acts on a fall and the lowest that acts
    on a rise; a bar whose range stays strictly inside both can be skipped."""
    k = st.bounds.shape[0]
    for i in range(k):
        st.bounds[i, 0] = -np.inf
        st.bounds[i, 1] = np.inf
        if st.params[S.P_LIQUIDATION] > 0 and st.inst[i, S.I_MARGIN] > 0:
            liq = st.pos[i, S.PS_LIQ]
            if not np.isnan(liq):
                if st.pos[i, S.PS_QTY] > 0:
                    st.bounds[i, 0] = liq
                else:
                    st.bounds[i, 1] = liq
    n_market = 0
    n_active = st.counters[S.C_N_ACTIVE]
    if k == 1:
        # One instrument (the common case): the bounds live in registers through the loop.
        lo = st.bounds[0, 0]
        hi = st.bounds[0, 1]
        for j in range(n_active):
            oid = st.active[j]
            typ = st.orders[oid, S.O_TYPE]
            side = st.orders[oid, S.O_SIDE]
            px = st.orders[oid, S.O_PRICE]
            if st.orders[oid, S.O_TIF] == K.IOC:
                n_market += 1
            if typ == K.MARKET:
                n_market += 1
            elif (typ == K.LIMIT and side > 0) or (typ == K.STOP and side < 0):
                lo = max(lo, px)
            else:
                hi = min(hi, px)
        st.bounds[0, 0] = lo
        st.bounds[0, 1] = hi
        n_active = 0
    for j in range(n_active):
        oid = st.active[j]
        i = int(st.orders[oid, S.O_INST])
        typ = st.orders[oid, S.O_TYPE]
        side = st.orders[oid, S.O_SIDE]
        px = st.orders[oid, S.O_PRICE]
        if st.orders[oid, S.O_TIF] == K.IOC:
            n_market += 1  # acts (fills or expires) on its first bar, whatever the range
        if typ == K.MARKET:
            n_market += 1
        elif (typ == K.LIMIT and side > 0) or (typ == K.STOP and side < 0):
            st.bounds[i, 0] = max(st.bounds[i, 0], px)
        else:
            st.bounds[i, 1] = min(st.bounds[i, 1], px)
    st.counters[S.C_N_MARKET] = n_market
    n_trail = 0
    for r in range(st.counters[S.C_N_ACTIVE_TRIG]):
        tid = st.trig_live[r]
        i = int(st.trig[tid, S.T_INST])
        kind = st.trig[tid, S.T_KIND]
        if kind == K.TR_CROSS_DOWN:
            st.bounds[i, 0] = max(st.bounds[i, 0], st.trig[tid, S.T_LEVEL])
        elif kind == K.TR_CROSS_UP:
            st.bounds[i, 1] = min(st.bounds[i, 1], st.trig[tid, S.T_LEVEL])
        else:
            n_trail += 1
    st.counters[S.C_N_TRAIL] = n_trail
    nxt = S.NO_TIMER
    for j in range(st.counters[S.C_N_TIMERS]):
        if st.timers[j, S.TM_ACTIVE] != 0 and st.timers[j, S.TM_DUE] < nxt:
            nxt = st.timers[j, S.TM_DUE]
    st.counters[S.C_NEXT_TIMER] = nxt


@kernel_jit_inline
def bounds_stale_nb(st: S.SimState) -> None:
    """Orders, triggers or timers changed: the bounds are recomputed before they are next read
    (once per bar, however many fills and reactions the bar had)."""
    st.counters[S.C_BOUNDS_STALE] = 1


@kernel_jit_inline
def refresh_bounds_nb(st: S.SimState) -> None:
    """Recompute the bounds if something made them stale. Inlined: the test is one load, and a
    call passes the whole venue state (some 200 words) on the stack."""
    if st.counters[S.C_BOUNDS_STALE] != 0:
        st.counters[S.C_BOUNDS_STALE] = 0
        update_bounds_nb(st)


@kernel_jit_inline
def remove_active_nb(st: S.SimState, oid: int) -> None:
    n = st.counters[S.C_N_ACTIVE]
    for j in range(n):
        if st.active[j] == oid:
            st.active[j] = st.active[n - 1]
            st.counters[S.C_N_ACTIVE] = n - 1
            return


@kernel_jit_inline
def release_lock_nb(st: S.SimState, oid: int, amount: float) -> None:
    """Give back ``amount`` of an order's reservation (quote for buys, base for sells)."""
    if amount <= 0.0:
        return
    amount = min(amount, st.orders[oid, S.O_LOCK])
    st.orders[oid, S.O_LOCK] -= amount
    if st.orders[oid, S.O_SIDE] > 0:
        st.account[S.AC_LOCKED] = max(0.0, st.account[S.AC_LOCKED] - amount)
    else:
        i = int(st.orders[oid, S.O_INST])
        st.pos[i, S.PS_LOCKED] = max(0.0, st.pos[i, S.PS_LOCKED] - amount)


@kernel_jit_inline
def finish_order_nb(st: S.SimState, oid: int, status: int, reason: int) -> None:
    st.orders[oid, S.O_STATUS] = status
    st.orders[oid, S.O_REASON] = reason
    st.orders[oid, S.O_DONE_BAR] = st.counters[S.C_BAR]
    release_lock_nb(st, oid, st.orders[oid, S.O_LOCK])
    remove_active_nb(st, oid)


@kernel_jit
def cancel_order_nb(st: S.SimState, oid: int, reason: int, notify: bool) -> bool:
    if oid < 0 or oid >= st.counters[S.C_N_ORDERS] or st.orders[oid, S.O_STATUS] != K.ST_OPEN:
        return False
    finish_order_nb(st, oid, K.ST_CANCELLED, reason)
    if notify:
        o = st.orders[oid]
        push_pending_nb(
            st,
            K.EV_CANCEL,
            int(o[S.O_INST]),
            oid,
            o[S.O_SIDE],
            o[S.O_PRICE],
            o[S.O_FILLED],
            reason,
            o[S.O_QTY] - o[S.O_FILLED],
            o[S.O_TAG],
        )
    return True


@kernel_jit
def risk_gate_nb(
    st: S.SimState, i: int, side: float, ref: float, qty: float, fraction: bool
) -> int:
    """The pre-trade risk checks other than the rate (STRATEGIES.md §4): the reason that
    refuses the order, or -1. An order sized as a fraction is known only at its fill: only the
    kill switch's latch applies to it."""
    p = st.params
    pos_qty = st.pos[i, S.PS_QTY]
    killed = st.monitor[R.MN_KILL_DONE] > 0.0
    if killed and (fraction or R.increases_exposure_nb(pos_qty, side, qty)):
        return K.R_RISK_KILLED
    if fraction:
        return -1
    if R.notional_over_cap_nb(qty, ref, p[S.P_RISK_NOTIONAL]):
        return K.R_RISK_NOTIONAL
    cap = p[S.P_RISK_LEVERAGE]
    if cap > 0.0:
        other = 0.0
        for j in range(st.pos.shape[0]):
            q = st.pos[j, S.PS_QTY]
            if j != i and q != 0.0:
                other += abs(q) * st.pos[j, S.PS_MARK]
        setting = st.inst[i, S.I_LEVERAGE] if st.inst[i, S.I_MARGIN] > 0 else 1.0
        if R.leverage_over_cap_nb(cap, setting, other, pos_qty, side, qty, ref, equity_nb(st)):
            return K.R_RISK_LEVERAGE
    return -1


@kernel_jit_inline
def order_time_nb(st: S.SimState) -> float:
    """The current bar's time (epoch ms), also after the data ended."""
    n = st.times.shape[0]
    return float(bar_ms_nb(st, min(max(st.counters[S.C_BAR], 0), n - 1)))


@kernel_jit_inline
def place_order_nb(st: S.SimState, a: np.ndarray) -> int:
    """Log and activate an order from an action row; a refused order is logged REJECTED and a
    cancel event is queued. Returns the order id."""
    oid = st.counters[S.C_N_ORDERS]
    st.counters[S.C_N_ORDERS] = oid + 1
    i = int(a[K.A_INST])
    if i < 0 or i >= st.inst.shape[0]:
        st.orders[oid, :] = 0.0
        st.orders[oid, S.O_INST] = -1
        st.orders[oid, S.O_STATUS] = K.ST_REJECTED
        st.orders[oid, S.O_REASON] = K.R_INVALID
        st.orders[oid, S.O_DONE_BAR] = st.counters[S.C_BAR]
        push_pending_nb(
            st,
            K.EV_CANCEL,
            -1,
            oid,
            a[K.A_SIDE],
            a[K.A_PRICE],
            0.0,
            K.R_INVALID,
            a[K.A_QTY],
            a[K.A_TAG],
        )
        return oid
    o = st.orders[oid]
    o[:] = 0.0
    o[S.O_INST] = i
    o[S.O_SIDE] = 1.0 if a[K.A_SIDE] > 0 else -1.0
    o[S.O_TYPE] = a[K.A_TYPE]
    o[S.O_TIF] = a[K.A_TIF]
    o[S.O_REDUCE] = a[K.A_REDUCE_ONLY]
    o[S.O_TAG] = a[K.A_TAG]
    o[S.O_SIZE_MODE] = a[K.A_SIZE_MODE]
    o[S.O_PLACED_BAR] = st.counters[S.C_BAR]
    o[S.O_DONE_BAR] = -1
    o[S.O_LAST_HIT_BAR] = -1
    o[S.O_AVG_FILL] = np.nan
    o[S.O_STATUS] = K.ST_OPEN
    inst = st.inst[i]
    typ = int(a[K.A_TYPE])
    side = o[S.O_SIDE]
    price = a[K.A_PRICE]
    if typ != K.MARKET:
        price = round_price_nb(price, inst[S.I_TICK], inst[S.I_TICK_DEC])
    o[S.O_PRICE] = price if typ != K.MARKET else np.nan
    mark = st.pos[i, S.PS_MARK]
    fraction = a[K.A_SIZE_MODE] == K.SIZE_FRACTION
    qty = a[K.A_QTY]
    if not fraction:
        qty = floor_qty_nb(qty, inst[S.I_LOT], inst[S.I_LOT_DEC])
    o[S.O_QTY] = qty
    reason = -1
    if typ < K.MARKET or typ > K.STOP:
        reason = K.R_INVALID
    elif not (qty > 0.0) or (fraction and qty > 1.0):
        reason = K.R_MIN_SIZE if not fraction else K.R_INVALID
    elif typ != K.MARKET and not (price > 0.0):
        reason = K.R_INVALID
    if reason < 0 and not fraction:
        ref = price if typ != K.MARKET else mark
        if qty < inst[S.I_MIN_QTY] or (ref == ref and qty * ref < inst[S.I_MIN_NOTIONAL] - 1e-12):
            reason = K.R_MIN_SIZE
    if reason < 0:
        reason = risk_gate_nb(st, i, side, price if typ != K.MARKET else mark, qty, fraction)
    limit = int(st.params[S.P_RISK_RATE])
    at_ms = 0.0
    if reason < 0 and limit > 0:
        at_ms = R.paced_time_nb(st.rate, order_time_nb(st), st.params[S.P_RISK_SPACING])
        if not R.rate_allows_nb(st.rate, at_ms, limit):
            reason = K.R_RISK_RATE
    if reason < 0:
        # A limit on the wrong side of the market is marketable: it takes liquidity.
        if typ == K.LIMIT and mark == mark:
            if (side > 0 and price >= mark) or (side < 0 and price <= mark):
                o[S.O_TAKER] = 1.0
        elif typ != K.LIMIT:
            o[S.O_TAKER] = 1.0
        if inst[S.I_MARGIN] == 0 and not fraction and a[K.A_REDUCE_ONLY] == 0:
            if side > 0:
                ref = price if typ != K.MARKET else mark
                rate = inst[S.I_TAKER] if o[S.O_TAKER] > 0 else inst[S.I_MAKER]
                need = qty * ref * (1.0 + rate)
                free = st.account[S.AC_CASH] - st.account[S.AC_LOCKED]
                if need == need:
                    if need > free + 1e-9:
                        reason = K.R_INSUFFICIENT_FUNDS
                    else:
                        o[S.O_LOCK] = need
                        st.account[S.AC_LOCKED] += need
            else:
                free_base = st.pos[i, S.PS_QTY] - st.pos[i, S.PS_LOCKED]
                if qty > free_base + 1e-12:
                    reason = K.R_INSUFFICIENT_FUNDS
                else:
                    o[S.O_LOCK] = qty
                    st.pos[i, S.PS_LOCKED] += qty
    if reason >= 0:
        o[S.O_STATUS] = K.ST_REJECTED
        o[S.O_REASON] = reason
        o[S.O_DONE_BAR] = st.counters[S.C_BAR]
        push_pending_nb(st, K.EV_CANCEL, i, oid, side, price, 0.0, reason, qty, a[K.A_TAG])
        return oid
    if limit > 0:
        R.rate_record_nb(st.rate, at_ms, limit)
    n = st.counters[S.C_N_ACTIVE]
    st.active[n] = oid
    st.counters[S.C_N_ACTIVE] = n + 1
    return oid


@kernel_jit
def disarm_trigger_nb(st: S.SimState, tid: int) -> None:
    """Trigger ``tid`` (armed) is spent or disarmed: off the live list, which keeps its order."""
    st.trig[tid, S.T_ACTIVE] = 0.0
    n = st.counters[S.C_N_ACTIVE_TRIG]
    live = st.trig_live
    for r in range(n):
        if live[r] == tid:
            for q in range(r + 1, n):
                live[q - 1] = live[q]
            st.counters[S.C_N_ACTIVE_TRIG] = n - 1
            return


@kernel_jit
def disarm_tagged_nb(st: S.SimState, tag: float) -> float:
    """Disarm every armed trigger carrying ``tag``; how many."""
    live = st.trig_live
    kept = 0
    for r in range(st.counters[S.C_N_ACTIVE_TRIG]):
        tid = live[r]
        if st.trig[tid, S.T_TAG] == tag:
            st.trig[tid, S.T_ACTIVE] = 0.0
        else:
            live[kept] = tid
            kept += 1
    count = st.counters[S.C_N_ACTIVE_TRIG] - kept
    st.counters[S.C_N_ACTIVE_TRIG] = kept
    return float(count)


@kernel_jit
def arm_trigger_nb(st: S.SimState, a: np.ndarray, kind: int) -> int:
    tid = st.counters[S.C_N_TRIG]
    st.counters[S.C_N_TRIG] = tid + 1
    live = st.counters[S.C_N_ACTIVE_TRIG]
    st.trig_live[live] = tid
    st.counters[S.C_N_ACTIVE_TRIG] = live + 1
    tr = st.trig[tid]
    tr[:] = 0.0
    tr[S.T_INST] = a[K.A_INST]
    tr[S.T_ARMED_BAR] = st.counters[S.C_BAR]
    tr[S.T_ACTIVE] = 1.0
    tr[S.T_TAG] = a[K.A_TAG]
    tr[S.T_FIRED_BAR] = -1
    if kind == K.A_ARM_CROSS:
        tr[S.T_KIND] = K.TR_CROSS_UP if a[K.A_SIDE] > 0 else K.TR_CROSS_DOWN
        tr[S.T_LEVEL] = a[K.A_PRICE]
    else:
        tr[S.T_KIND] = K.TR_TRAIL_LONG if a[K.A_SIDE] > 0 else K.TR_TRAIL_SHORT
        tr[S.T_REF] = a[K.A_PRICE]
        tr[S.T_DIST] = a[K.A_QTY]
        if a[K.A_SIDE] > 0:
            tr[S.T_LEVEL] = a[K.A_PRICE] * (1.0 - a[K.A_QTY])
        else:
            tr[S.T_LEVEL] = a[K.A_PRICE] * (1.0 + a[K.A_QTY])
    return tid


@kernel_jit
def set_timer_nb(st: S.SimState, due_ms: int, tag: float) -> int:
    j = st.counters[S.C_N_TIMERS]
    st.counters[S.C_N_TIMERS] = j + 1
    st.timers[j, S.TM_DUE] = due_ms
    st.timers[j, S.TM_ACTIVE] = 1
    st.timers[j, S.TM_TAG] = int(tag)
    return j


@kernel_jit
def cancel_tagged_nb(st: S.SimState, inst: int, tag: float) -> float:
    """Cancel every open order of ``inst`` (all instruments if < 0) carrying ``tag``."""
    count = 0.0
    j = 0
    while j < st.counters[S.C_N_ACTIVE]:
        oid = st.active[j]
        o = st.orders[oid]
        if o[S.O_TAG] == tag and (inst < 0 or int(o[S.O_INST]) == inst):
            cancel_order_nb(st, oid, K.R_USER, True)
            count += 1.0
        else:
            j += 1
    return count


@kernel_jit
def apply_actions_nb(st: S.SimState, actions: np.ndarray, n: int) -> None:
    """Carry out ``n`` action rows, writing each assigned id back into ``A_RESULT``."""
    apply_actions_inline_nb(st, actions, n)


@kernel_jit_inline
def apply_actions_inline_nb(st: S.SimState, actions: np.ndarray, n: int) -> None:
    """:func:`apply_actions_nb` for the compiled driver's loop (see ``next_event_inline_nb``)."""
    for r in range(n):
        a = actions[r]
        kind = int(a[K.A_KIND])
        res = -1.0
        if kind == K.A_PLACE:
            res = place_order_nb(st, a)
        elif kind == K.A_CANCEL:
            if a[K.A_ID] >= 0:
                res = 1.0 if cancel_order_nb(st, int(a[K.A_ID]), K.R_USER, True) else 0.0
            else:
                res = cancel_tagged_nb(st, int(a[K.A_INST]), a[K.A_TAG])
        elif kind == K.A_ARM_CROSS or kind == K.A_ARM_TRAILING:
            res = arm_trigger_nb(st, a, kind)
        elif kind == K.A_SET_TIMER:
            res = set_timer_nb(st, int(a[K.A_ID]), a[K.A_TAG])
        elif kind == K.A_DISARM:
            tid = int(a[K.A_ID])
            if tid < 0:
                res = disarm_tagged_nb(st, a[K.A_TAG])
            elif tid < st.counters[S.C_N_TRIG] and st.trig[tid, S.T_ACTIVE] != 0:
                disarm_trigger_nb(st, tid)
                res = 1.0
            else:
                res = 0.0
        elif kind == K.A_CANCEL_ALL:
            target = int(a[K.A_INST])
            count = 0
            j = 0
            while j < st.counters[S.C_N_ACTIVE]:
                oid = st.active[j]
                if target < 0 or int(st.orders[oid, S.O_INST]) == target:
                    cancel_order_nb(st, oid, K.R_USER, True)
                    count += 1
                else:
                    j += 1
            res = count
        a[K.A_RESULT] = res
    bounds_stale_nb(st)
