"""Certified distances to convex hulls: `project_onto_hull` and what is built on it.

Importing this package does not import TensorFlow under `KERAS_BACKEND=jax`.
"""

from tfhull.hull.solver import HullResult
from tfhull.hull.solver import project_onto_hull
from tfhull.hull.solver import SolverConfig
