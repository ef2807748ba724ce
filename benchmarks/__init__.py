"""Benchmarks: scripts run as ``python benchmarks/<name>.py`` from the repository root; not part of the suite.

A regular package (not a namespace one) so that ``benchmarks.load`` is this folder's even though
pyarrow installs a top-level ``benchmarks`` package of its own.
"""
