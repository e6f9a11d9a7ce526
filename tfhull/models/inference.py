"""Saving, safe loading and batched, static-shape inference of the registry's Keras models.

  model = tfhull.models.load(path)                       # safe_mode=True, clear errors
  feats = tfhull.models.predict(model, x, layer="features", batch_size=512)
"""

from typing import Optional

import numpy as np

from tfhull.errors import UserError

MODEL_FILE = "model.keras"


def save(model, path: str) -> None:
  """Writes `model` as a `.keras` archive (local or gs://)."""
  model.save(path)


def load(path: str, strategy=None):
  """Loads a `.keras` model with `safe_mode=True` (no arbitrary code from shared buckets), computing
  in float32 whatever policy it was trained with (`mixed_bfloat16` would quantize every
  measurement: features, attacks, flip-point ties, margins). The variables of a mixed-precision
  model are float32 already, so the weights are exactly the trained ones; the trained policy is
  kept as `trained_dtype_policy(model)`.

  Args:
    path: a `.keras` file, local or gs://.
    strategy: a tf.distribute strategy whose scope the variables are created in, or None.

  Raises:
    UserError: the file is missing, truncated or not a Keras model archive.
  """
  import keras  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  if not io.exists(path):
    raise UserError(f"model file {path} does not exist; rerun the train step or check "
                    "--model_artifact")
  try:
    if strategy is None:
      model = keras.saving.load_model(path, compile=False, safe_mode=True)
    else:
      with strategy.scope():
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
  except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, KeyError from a bad archive.
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    raise UserError(f"model file {path} is corrupt or not a Keras model ({type(e).__name__}: "
                    f"{first[:200]}); rerun the train step with --force=train") from e
  return to_float32(model)


def trained_dtype_policy(model) -> str:
  """The dtype policy the model's layers had when loaded ("float32", "mixed_bfloat16", or
  "mixed" for several), before `to_float32`."""
  return getattr(model, "_tfhull_trained_dtype_policy", None) or _policy_name(model)


def compute_dtype(model) -> str:
  """The compute dtype of the model's layers ("float32"; several are joined with '+')."""
  return "+".join(sorted({layer.dtype_policy.compute_dtype
                          for layer in model._flatten_layers(include_self=True)}))  # pylint: disable=protected-access


def _policy_name(model) -> str:
  names = {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
           if type(layer).__name__ != "InputLayer"}
  return names.pop() if len(names) == 1 else "mixed"


def to_float32(model):
  """Sets every layer of `model` (in place) to compute in float32 and returns it. Only the
  compute dtype changes: mixed-precision variables are float32 already."""
  trained = _policy_name(model)
  for layer in model._flatten_layers(include_self=True):  # pylint: disable=protected-access
    if layer.dtype_policy.name != "float32":
      if layer.dtype_policy.variable_dtype != "float32":
        held = layer.dtype_policy.variable_dtype
        raise UserError(f"model {model.name}: layer {layer.name} holds {held} variables; "
                        "tfhull measures models with float32 variables only")
      layer.dtype_policy = "float32"
  model._tfhull_trained_dtype_policy = trained  # pylint: disable=protected-access
  return model


def load_artifact(artifact, strategy=None):
  """The model of a Model artifact (`tfhull.artifacts.Artifact`), checked against its metadata.

  Raises:
    UserError: a missing or corrupt model file, or one whose input shape is not the recorded one.
  """
  want = artifact.summary.get("input_shape")
  if artifact.summary.get("model_format") == "savedmodel":  # An imported `savedmodel:PATH`.
    from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
    return savedmodel.load(artifact.summary.get("model_spec", ""),
                           artifact.path(savedmodel.DIR), want,
                           artifact.summary.get("num_classes"), strategy=strategy)
  model = load(artifact.path(MODEL_FILE), strategy=strategy)
  if want is not None and list(model.input_shape[1:]) != list(want):
    raise UserError(f"{artifact.uri}: {MODEL_FILE} takes inputs {tuple(model.input_shape[1:])} "
                    f"but its metadata says {tuple(want)}; rerun the train step with --force=train")
  return model


def layer_names(model) -> list[str]:
  """The model's layer names, with the outputs of an imported SavedModel's signature."""
  extra = getattr(model, "_tfhull_layer_outputs", {})
  return [layer.name for layer in model.layers] + [k for k in extra if k != "logits"]


def submodel(model, layer: Optional[str]):
  """The model truncated at `layer` (None or 'logits': the model itself).

  Raises:
    UserError: no layer of that name, listing the layers there are.
  """
  import keras  # pylint: disable=import-outside-toplevel
  if layer in (None, "logits"):
    return model
  names = layer_names(model)
  if layer not in names:
    raise UserError(f"model {model.name} has no layer {layer!r}; its layers are "
                    f"{', '.join(names)} (the penultimate one is 'features')")
  extra = getattr(model, "_tfhull_layer_outputs", {})  # A SavedModel's signature outputs.
  out = extra[layer] if layer in extra else model.get_layer(layer).output
  return keras.Model(model.inputs, out, name=f"{model.name}_{layer}")


def predict(model, x: np.ndarray, *, layer: Optional[str] = None, batch_size: int = 512,
            strategy=None, verbose: int = 0) -> np.ndarray:
  """Outputs of `layer` (default: the logits) for inputs x, flattened per example.

  The inputs are zero-padded to a multiple of the global batch so every batch has the same
  static shape (TPU/XLA-friendly); the padding rows are dropped from the output.

  Args:
    model: a Keras model (created under `strategy.scope()` when a strategy is given).
    x: (n, *input_shape) float32 inputs.
    layer: a layer name, 'logits' or None.
    batch_size: examples per replica per step.
    strategy: tf.distribute strategy; the global batch is batch_size x replicas.
  Returns:
    (n, k) float32 outputs, k the flattened size of the layer's output.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = np.asarray(x, np.float32)
  want = tuple(int(d) for d in model.input_shape[1:])
  if tuple(x.shape[1:]) != want:
    raise UserError(f"inputs of shape {x.shape[1:]} do not fit model {model.name}, which takes "
                    f"{want}; use the dataset the model was trained on")
  net = submodel(model, layer)
  if not len(x):
    return np.zeros((0, int(np.prod(net.output_shape[1:]))), np.float32)
  replicas = strategy.num_replicas_in_sync if strategy is not None else 1
  batch = max(1, min(int(batch_size) * replicas, -(-len(x) // replicas) * replicas))
  n = len(x)
  padded = np.concatenate([x, np.zeros((-n % batch,) + x.shape[1:], np.float32)])
  data = tf.data.Dataset.from_tensor_slices(padded).batch(batch, drop_remainder=True)
  out = net.predict(data, verbose=verbose)
  return np.asarray(out, np.float32).reshape(len(padded), -1)[:n]
