"""Peer solvers reimplemented for the hull-solver benchmark (numpy/scipy, CPU, float64)."""
