"""Benchmarks: the hull solver against exact and cvxpy references (`hull_solver`), GPU check."""
