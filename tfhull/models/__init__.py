"""Keras 3 model builders chosen by one spec string, e.g. `mlp:width=1024,depth=3`.

Every model is a functional `keras.Model` whose penultimate layer is named `features` and whose
final Dense, named `logits`, outputs unnormalized logits (no softmax).

Importing this package does not import Keras; `build`, `load` and `predict` import it when
called.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "2"

from tfhull.models.inference import compute_dtype
from tfhull.models.inference import layer_names
from tfhull.models.inference import load
from tfhull.models.inference import load_artifact
from tfhull.models.inference import MODEL_FILE
from tfhull.models.inference import predict
from tfhull.models.inference import save
from tfhull.models.inference import submodel
from tfhull.models.inference import to_float32
from tfhull.models.inference import trained_dtype_policy
from tfhull.models.registry import build
from tfhull.models.registry import file_kind
from tfhull.models.registry import file_path
from tfhull.models.registry import file_sha256
from tfhull.models.registry import FILE_KINDS
from tfhull.models.registry import load_file
from tfhull.models.registry import ModelEntry
from tfhull.models.registry import names
from tfhull.models.registry import parameter_report
from tfhull.models.registry import ParameterReport
from tfhull.models.registry import parse_spec
from tfhull.models.registry import REGISTRY
from tfhull.models.registry import spec_sha256
