"""Feature representations for hull questions: pixels, Haar wavelet coefficients, layers, logits.

Importing this package does not import TensorFlow; the transforms import it when called.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "1"

from tfhull.representations.haar import haar2d
from tfhull.representations.haar import haar_features
from tfhull.representations.haar import inverse_haar2d
from tfhull.representations.haar import parse_representation
from tfhull.representations.haar import Representation
from tfhull.representations.spaces import compute
from tfhull.representations.spaces import Features
from tfhull.representations.spaces import labels_of
from tfhull.representations.spaces import load
from tfhull.representations.spaces import needs_model
from tfhull.representations.spaces import save
from tfhull.representations.spaces import Space
