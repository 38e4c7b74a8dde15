"""Benchmarks that ship with the package (``dynamatch bench ...``)."""
