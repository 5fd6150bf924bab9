"""numba kernels of the simulated exchange. They import numpy and our own modules only.

Every kernel that allocates nothing is compiled without reference counting
(:data:`tradetower.jit_options.NO_NRT`, which says why); only ``alloc.py`` and the sweep entry
points allocate.
"""
