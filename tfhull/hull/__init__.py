"""Certified distances to convex hulls: `project_onto_hull` and what is built on it.

Importing this package does not import TensorFlow under `KERAS_BACKEND=jax`.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "7"

from tfhull.hull.classes import hull_membership
from tfhull.hull.classes import Membership
from tfhull.hull.classes import per_class_distances
from tfhull.hull.classes import PerClassResult
from tfhull.hull.solver import HullResult
from tfhull.hull.solver import project_onto_hull
from tfhull.hull.solver import SolverConfig
