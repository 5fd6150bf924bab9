"""The numba decorator of the engine's and the simulator's kernels.

:func:`kernel_jit` compiles a function with ``cache=True`` and without numba's reference
counting (``_nrt=False``). The simulator's venue state is a tuple of some twenty arrays: with
reference counting on, every call that is not inlined increments and decrements each array of
the tuple, about 100 ns a call, which was most of the cost of a fill. A function compiled this
way must not allocate arrays.

Even without reference counting, a call that is not inlined passes that tuple flattened (about
200 words pushed on the stack): the simulator's per-event helpers use :func:`kernel_jit_inline`,
and cheap tests guard the calls that are usually not needed.
"""

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])

NO_NRT: Final[dict[str, Any]] = {"_nrt": False}
"""The same option for an ``njit`` call that needs other arguments (an explicit signature)."""


def kernel_jit(fn: F) -> F:
    """Compile ``fn`` with ``cache=True`` and without reference counting."""
    return cast(F, njit(cache=True, **NO_NRT)(fn))


def kernel_jit_inline(fn: F) -> F:
    """:func:`kernel_jit`, and inlined into its callers by LLVM (``forceinline``): the hot
    path's helpers. numba's own IR inlining (``inline="always"``) gave slower code and took
    most of the compile time."""
    return cast(F, njit(cache=True, forceinline=True, **NO_NRT)(fn))
