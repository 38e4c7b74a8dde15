"""Numba kernels: arrays and scalars in, arrays out; no I/O, no classes, no units beyond the names."""
