"""``prefetch_row(arr, i)``: ask the CPU to start loading row ``i`` of ``arr`` into cache.

numba has no prefetch of its own; this emits LLVM's ``llvm.prefetch`` (a hint, never a fault:
any address is allowed). The event loop uses it for the bar of the next signal while it handles
the current one, so that the next event finds its prices and time in cache without the skip
walk streaming every bar in between. In Python (``NUMBA_DISABLE_JIT=1``) it does nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def prefetch_row(arr: np.ndarray, i: int) -> None:
    """Start loading the first cache line of ``arr[i]`` (a hint: nothing in Python)."""


@intrinsic
def _prefetch_row(typingctx: Any, arr: Any, i: Any) -> Any:
    if not isinstance(arr, types.Array) or not isinstance(i, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], idxty, types.intp)
        offset = builder.mul(idx, builder.extract_value(ary.strides, 0))
        base = builder.ptrtoint(ary.data, cgutils.intp_t)
        # The intrinsic is named for its pointer type: ``p0`` in LLVM's opaque-pointer IR (what
        # numba builds from llvmlite 0.45 on), ``p0i8`` in the older typed-pointer IR.
        voidptr = cgutils.voidptr_t
        name = "llvm.prefetch.p0" if getattr(voidptr, "is_opaque", False) else "llvm.prefetch.p0i8"
        addr = builder.inttoptr(builder.add(base, offset), voidptr)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [voidptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, name)  # type: ignore[no-untyped-call]
        # A read (0), kept in every cache level (3), of data (1).
        builder.call(fn, [addr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, i), codegen


@overload(prefetch_row)
def _prefetch_row_overload(arr, i):  # type: ignore[no-untyped-def]  # names only, as impl's
    def impl(arr, i):  # type: ignore[no-untyped-def]  # numba wants the overload's names alone
        _prefetch_row(arr, i)  # type: ignore[call-arg]  # numba supplies the typing context

    return impl
