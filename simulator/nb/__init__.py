"""numba kernels of the simulated exchange. They import numpy and our own modules only.

Every kernel that allocates nothing is compiled with ``_nrt=False``. The venue state is a tuple
of some twenty arrays, and numba's cached functions call each other opaquely (object code, no
cross-function inlining): with reference counting on, each call increments and decrements
every array of the tuple, about 100 ns, which used to be most of the cost of a fill. Without it
a call costs a few nanoseconds. Only ``alloc.py`` and the sweep entry points allocate.
"""
