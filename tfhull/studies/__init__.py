"""Studies beyond the linear pipeline: decision boundaries of 2-D data inside and outside the
training hull (`toy2d`)."""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "2"
