"""numba kernels of the simulated exchange. They import numpy and our own modules only."""
