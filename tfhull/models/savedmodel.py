"""`--model=savedmodel:PATH`: a TensorFlow SavedModel directory used as a Keras model.

What the SavedModel must provide: a `serving_default` signature with one float32 input of the
data's per-example shape (batch dim free) returning a dict with `logits` (batch, num_classes) and
one entry per `--representations=layer:NAME` the study measures (e.g. `features`, (batch, d)).
At load time the signature is wrapped in `keras.layers.TFSMLayer` and each output key becomes a
named layer, so `predict(model, x, layer="features")` and gradients (attacks) work as for a
built model. Loading a SavedModel restores a TensorFlow graph and its variables; it unpickles no
Python objects and runs no Python code from the directory.
"""

import dataclasses
import hashlib
import os

from tfhull.errors import UserError

SIGNATURE = "serving_default"
DIR = "savedmodel"  # The SavedModel's copy inside a Model artifact.
FIX = ("it must be a SavedModel whose serving_default signature returns a dict with 'logits' "
       "(see docs/steps.md)")


@dataclasses.dataclass(frozen=True)
class Signature:
  """The `serving_default` signature: input key -> shape and output key -> shape (no batch
  dim; None for an unknown size)."""
  inputs: dict
  outputs: dict


def files(path: str) -> list:
  """Sorted relative names of the regular files under directory `path` (local or gs://)."""
  if "://" in path:
    from tfhull import io  # pylint: disable=import-outside-toplevel
    walk = io.gfile.walk(path)
  else:
    walk = os.walk(path)
  return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in walk for f in fs)


def _read(path: str) -> bytes:
  if "://" in path:
    from tfhull import io  # pylint: disable=import-outside-toplevel
    return io.read_bytes(path)
  with open(path, "rb") as f:
    return f.read()


def _exists(path: str) -> bool:
  if "://" in path:
    from tfhull import io  # pylint: disable=import-outside-toplevel
    return io.exists(path)
  return os.path.isfile(path)


def check_exists(spec: str, path: str) -> None:
  """UserError unless `path` holds a `saved_model.pb`."""
  if not _exists(os.path.join(path, "saved_model.pb")):
    raise UserError(f"--model={spec}: no SavedModel at {path} (no saved_model.pb); give the "
                    "directory tf.saved_model.save wrote")


def tree_sha256(path: str) -> str:
  """sha256 over the sorted relative names and contents of every file of the directory, so the
  cache key follows the SavedModel's content, not its path."""
  h = hashlib.sha256()
  for name in files(path):
    h.update(name.encode() + b"\0")
    h.update(hashlib.sha256(_read(os.path.join(path, name))).digest())
  return h.hexdigest()


def signature(spec: str, path: str) -> Signature:
  """The `serving_default` signature read from `saved_model.pb` (a protobuf; no graph loaded).

  Raises:
    UserError: no SavedModel at `path`, an unreadable one, no such signature, not exactly one
      input, or no `logits` output.
  """
  check_exists(spec, path)
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
  proto = saved_model_pb2.SavedModel()
  try:
    proto.ParseFromString(_read(os.path.join(path, "saved_model.pb")))
  except Exception as e:  # google.protobuf.message.DecodeError.
    raise UserError(f"--model={spec}: {path}/saved_model.pb is corrupt ({type(e).__name__}); "
                    "save the model again") from e
  sigs = {k: v for m in proto.meta_graphs for k, v in m.signature_def.items()}
  if SIGNATURE not in sigs:
    raise UserError(f"--model={spec}: the SavedModel has no {SIGNATURE} signature (it has "
                    f"{', '.join(sorted(sigs)) or 'none'}); {FIX}")
  sig = sigs[SIGNATURE]

  def shapes(tensors):
    return {k: tuple(None if d.size < 0 else int(d.size) for d in v.tensor_shape.dim[1:])
            for k, v in sorted(tensors.items())}

  out = Signature(shapes(sig.inputs), shapes(sig.outputs))
  if len(out.inputs) != 1:
    raise UserError(f"--model={spec}: the {SIGNATURE} signature takes {len(out.inputs)} inputs "
                    f"({', '.join(out.inputs)}); it must take one, the examples")
  if "logits" not in out.outputs:
    raise UserError(f"--model={spec}: the {SIGNATURE} signature returns "
                    f"{', '.join(out.outputs) or 'nothing'}, no 'logits'; {FIX}")
  return out


def check(spec: str, path: str, input_shape=None, num_classes=None, layers=()) -> Signature:
  """The signature of `path`, checked against the data's per-example shape, its class count and
  the layers the study reads (UserError naming the fix)."""
  sig = signature(spec, path)
  if input_shape is not None:
    (got,) = sig.inputs.values()
    want = tuple(int(d) for d in input_shape)
    if len(got) != len(want) or any(g not in (None, w) for g, w in zip(got, want)):
      raise UserError(f"--model={spec}: the SavedModel takes inputs {got}, the dataset has "
                      f"{want}; use the dataset the model was trained on")
  if num_classes is not None and sig.outputs["logits"] not in ((int(num_classes),),
                                                                (None,)):
    raise UserError(f"--model={spec}: the SavedModel's logits have shape "
                    f"{sig.outputs['logits']}, the dataset has {num_classes} classes; it must "
                    "output one logit per class")
  for layer in layers:
    if layer not in sig.outputs:
      raise UserError(f"--model={spec}: the {SIGNATURE} signature has no output {layer!r} for "
                      f"layer:{layer}; its outputs are {', '.join(sig.outputs)}; return it in "
                      "the signature's dict or use one of these")
  return sig


def load(spec: str, path: str, input_shape, num_classes=None, strategy=None):
  """A functional Keras model over the SavedModel at `path`: input (batch, *input_shape), output
  the `logits` (batch, c); every other signature output is a named layer for `submodel`.

  Raises:
    UserError: see `check`; or a SavedModel TensorFlow cannot restore.
  """
  import keras  # pylint: disable=import-outside-toplevel
  sig = check(spec, path, input_shape, num_classes)

  def build():
    inputs = keras.Input(tuple(int(d) for d in input_shape), name="input_layer")
    try:
      outs = keras.layers.TFSMLayer(path, call_endpoint=SIGNATURE)(inputs)
    except Exception as e:  # ValueError, OSError, tf.errors from a bad directory.
      first = (str(e).strip().splitlines() or [""])[0]
      raise UserError(f"--model={spec}: TensorFlow cannot restore the SavedModel at {path} "
                      f"({type(e).__name__}: {first[:200]}); save it again") from e
    named = {k: keras.layers.Identity(name=k)(outs[k]) for k in sig.outputs}
    model = keras.Model(inputs, named["logits"], name="savedmodel")
    model._tfhull_layer_outputs = named  # pylint: disable=protected-access
    return model

  if strategy is None:
    return build()
  with strategy.scope():
    return build()
