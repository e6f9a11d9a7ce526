"""tfhull: where deep networks extrapolate relative to the convex hull of their training set.

Importing the package is cheap and backend-neutral: sub-packages import TensorFlow only where
they need it, so `import tfhull.hull` also works under `KERAS_BACKEND=jax` without TensorFlow.
"""

__version__ = "0.1.0"
