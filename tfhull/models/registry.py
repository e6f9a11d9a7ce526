"""Model spec grammar, the registry of builders, `build` and parameter reports.

Spec grammar: `NAME` or `NAME:KEY=VALUE[,KEY=VALUE...]`; omitted keys take their defaults.

  mlp:width=W,depth=K           K hidden Dense(W, relu) layers; `features` is the last one (W-d).
  cnn:width=W,depth=K           K Conv3x3(W) + relu blocks, 2x2 max-pool after each while the
                                spatial size is >= 2 (so 8x8 digits work at any depth); global
                                average pooling gives `features` (W-d).
  resnet:depth=D                CIFAR ResNet (He et al. 2016), D = 6n+2: 3 stages of 16/32/64
                                filters, n basic blocks each; `features` is 64-d.
  wide_resnet:depth=D,widen=K   WRN-D-K (Zagoruyko & Komodakis 2016), D = 6n+4: pre-activation
                                stages of 16K/32K/64K filters, n blocks each; `features` is 64K-d.
  linear                        logistic regression: `features` is the flattened input.
"""

import dataclasses
from typing import Any, Callable, Optional

from tfhull.errors import UserError
from tfhull.models import builders


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """One registered model: its builder, typed default kwargs and a one-line summary."""
  builder: Callable[..., Any]  # (input_shape, num_classes, seed=, **kwargs) -> keras.Model.
  defaults: dict               # key -> default value; the value's type is the key's type.
  image_only: bool             # needs an (H, W, C) input.
  summary: str


REGISTRY: dict[str, ModelEntry] = {
    "mlp": ModelEntry(builders.build_mlp, {"width": 256, "depth": 2}, False,
                      "multi-layer perceptron, depth hidden ReLU layers of width units"),
    "cnn": ModelEntry(builders.build_cnn, {"width": 32, "depth": 3}, True,
                      "plain conv net, depth 3x3 conv layers of width filters"),
    "resnet": ModelEntry(builders.build_resnet, {"depth": 20}, True,
                         "CIFAR-style ResNet, depth = 6n+2 (20, 32, 44, 56, 110)"),
    "wide_resnet": ModelEntry(builders.build_wide_resnet, {"depth": 16, "widen": 4}, True,
                              "wide ResNet WRN-depth-widen, depth = 6n+4 (10, 16, 22, 28)"),
    "linear": ModelEntry(builders.build_linear, {}, False, "logistic regression baseline"),
}


# Spec kinds that name a file instead of a builder: `keras:PATH` (a saved `.keras` model, loaded
# with safe_mode=True) and `savedmodel:PATH` (a SavedModel directory, see `savedmodel.py`), used
# as they are: the train step does not train them.
FILE_KINDS = {"keras": "a saved .keras model file, loaded with safe_mode=True, not trained",
              "savedmodel": "a SavedModel directory whose serving_default signature returns a "
                            "dict with 'logits' and the named layers, not trained"}


def file_kind(spec: str):
  """'keras' or 'savedmodel' for a file spec; None for builder specs."""
  if not isinstance(spec, str):
    return None
  name = spec.strip().partition(":")[0].strip()
  return name if name in FILE_KINDS else None


def file_path(spec: str):
  """The PATH of a `keras:PATH` or `savedmodel:PATH` spec; None for builder specs."""
  if not isinstance(spec, str):
    return None
  name, _, path = spec.strip().partition(":")
  return path.strip() if name.strip() in FILE_KINDS else None


def saved_layer_names(path: str) -> Optional[list]:
  """The top-level layer names recorded in a local `.keras` file's `config.json` (read as JSON,
  no TensorFlow, nothing deserialized); None where the file is not local or not readable (the
  train step then checks it on load)."""
  import json  # pylint: disable=import-outside-toplevel
  import zipfile  # pylint: disable=import-outside-toplevel
  if "://" in path:
    return None
  try:
    with zipfile.ZipFile(path) as z:
      config = json.loads(z.read("config.json"))
  except (OSError, KeyError, ValueError, zipfile.BadZipFile):
    return None
  layers = (config.get("config") or {}).get("layers") or []
  out = [(l.get("config") or {}).get("name") or l.get("name") for l in layers
         if isinstance(l, dict)]
  return [n for n in out if isinstance(n, str)] or None


def names() -> tuple[str, ...]:
  """The registered model names, in registry order."""
  return tuple(REGISTRY)


def _example(name: str) -> str:
  defaults = REGISTRY[name].defaults
  return name + (":" + ",".join(f"{k}={v}" for k, v in defaults.items()) if defaults else "")


def _typed(name: str, key: str, text: str, like: Any) -> Any:
  kind = type(like)
  try:
    if kind is bool:
      if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(text)
      return text.lower() in ("true", "1")
    return kind(text)
  except ValueError:
    raise UserError(f"model spec {name}: {key} must be {'an' if kind is int else 'a'} "
                    f"{kind.__name__}, got {text!r} (e.g. {_example(name)})") from None


def _validate(name: str, kwargs: dict) -> None:
  for key in ("width", "depth", "widen"):
    if key in kwargs and kwargs[key] < 1:
      raise UserError(f"model spec {name}: {key} must be >= 1, got {kwargs[key]}")
  depth = kwargs.get("depth")
  if name == "resnet" and (depth < 8 or (depth - 2) % 6):
    raise UserError(f"model spec resnet: depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, "
                    f"110), got {depth}")
  if name == "wide_resnet" and (depth < 10 or (depth - 4) % 6):
    raise UserError(f"model spec wide_resnet: depth must be 6n+4 with n >= 1 (10, 16, 22, 28, "
                    f"40), got {depth}")


def parse_spec(spec: str) -> tuple[str, dict]:
  """Splits `NAME[:KEY=VALUE,...]` into the name and its typed kwargs (defaults filled in).

  Raises:
    UserError: unknown name or key, a missing `=`, a value of the wrong type or out of range.
  """
  if not isinstance(spec, str) or not spec.strip():
    raise UserError(f"empty model spec; valid models: {', '.join(names())} "
                    "(e.g. mlp:width=256,depth=2)")
  name, _, args = spec.strip().partition(":")
  name = name.strip()
  if name in FILE_KINDS:
    if not args.strip():
      example = "path/to/model.keras" if name == "keras" else "path/to/saved_model_dir"
      raise UserError(f"model spec {spec!r}: give the file, e.g. {name}:{example}")
    return name, {"path": args.strip()}
  if name not in REGISTRY:
    raise UserError(f"unknown model {name!r} in spec {spec!r}; valid models: {', '.join(names())}"
                    ", or keras:PATH for a saved .keras model, or savedmodel:PATH for a "
                    "SavedModel directory")
  defaults = REGISTRY[name].defaults
  kwargs = dict(defaults)
  seen = set()
  for item in args.split(",") if args.strip() else ():
    key, eq, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not eq or not key or not text:
      raise UserError(f"model spec {spec!r}: {item.strip()!r} must be KEY=VALUE "
                      f"(e.g. {_example(name)})")
    if key not in defaults:
      valid = ", ".join(defaults) if defaults else "none"
      raise UserError(f"model spec {spec!r}: unknown key {key!r} for {name}; valid keys: {valid}")
    if key in seen:
      raise UserError(f"model spec {spec!r}: {key} is given twice; give it once")
    seen.add(key)
    kwargs[key] = _typed(name, key, text, defaults[key])
  _validate(name, kwargs)
  return name, kwargs


def layer_names(spec: str, input_shape=None) -> list[str]:
  """The layer names of model `spec` as a fresh process builds it, without building it (no
  TensorFlow). Keras numbers unnamed layers per process (`dense`, `dense_1`, ...), so a model
  built after others has higher numbers; the names `features` and `logits` are fixed."""
  name, kw = parse_spec(spec)
  if name == "savedmodel":  # The signature's outputs (reads saved_model.pb; UserError if bad).
    from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
    outputs = savedmodel.signature(spec, kw["path"]).outputs
    return ["input_layer", *[k for k in outputs if k != "logits"], "logits"]
  if name in FILE_KINDS:
    return saved_layer_names(kw["path"])
  counts = {}
  if name == "mlp":
    counts = {"flatten": 1, "dense": kw["depth"] - 1}
  elif name == "cnn":
    h, w = (input_shape[0], input_shape[1]) if input_shape and len(input_shape) == 3 else (2, 2)
    pools = 0
    for _ in range(kw["depth"]):
      if h >= 2 and w >= 2:
        pools, h, w = pools + 1, h // 2, w // 2
      h, w = (h, w) if input_shape else (2, 2)
    counts = {"conv2d": kw["depth"], "max_pooling2d": pools}
  elif name == "resnet":
    n = (kw["depth"] - 2) // 6
    convs = 1 + 6 * n + (2 if n else 0)
    counts = {"conv2d": convs, "batch_normalization": convs, "re_lu": 1 + 6 * n, "add": 3 * n}
  elif name == "wide_resnet":
    n = (kw["depth"] - 4) // 6
    projections = (2 + (kw["widen"] != 1)) if n else 0
    counts = {"conv2d": 1 + 6 * n + projections, "batch_normalization": 6 * n + 1,
              "re_lu": 6 * n + 1, "add": 3 * n}
  out = ["input_layer"]
  for base, count in counts.items():
    out += [base] + [f"{base}_{i}" for i in range(1, count)] if count else []
  return out + ["features", "logits"]


def build(spec: str, input_shape, num_classes: int, *, seed: int = 0):
  """Builds the model a spec names, for inputs of `input_shape` (no batch dim) and c classes.

  Args:
    spec: model spec string, see the module docstring.
    input_shape: per-example shape, e.g. (8, 8, 1) images or (2,) toy points.
    num_classes: c >= 2; the model outputs (batch, c) logits.
    seed: seeds every kernel initializer; the same seed gives the same initial weights.

  Returns:
    A functional `keras.Model` with layers named `features` and `logits`.

  Raises:
    UserError: a bad spec, or a model that does not fit the input shape.
  """
  name, kwargs = parse_spec(spec)
  if name in FILE_KINDS:
    return load_file(spec, input_shape, num_classes)
  try:
    shape = tuple(int(d) for d in input_shape)
  except (TypeError, ValueError):
    raise UserError(f"input shape must be a tuple of ints, got {input_shape!r}") from None
  if not shape or min(shape) < 1:
    raise UserError(f"input shape must be non-empty with positive sizes, got {shape}")
  if REGISTRY[name].image_only and len(shape) != 3:
    raise UserError(f"model {name} needs an image input shape (H, W, C), got {shape}; "
                    "use mlp or linear for flat inputs, or reshape the images to (H, W, 1)")
  if int(num_classes) < 2:
    raise UserError(f"num_classes must be >= 2, got {num_classes}")
  return REGISTRY[name].builder(shape, int(num_classes), seed=int(seed), **kwargs)


def load_file(spec: str, input_shape, num_classes: int, strategy=None):
  """The model of a `keras:PATH` spec (safe_mode=True) or a `savedmodel:PATH` spec, checked
  against the data's input shape and class count.

  Raises:
    UserError: a missing or corrupt file, or a model whose inputs or outputs do not fit.
  """
  from tfhull.models import inference  # pylint: disable=import-outside-toplevel
  path = file_path(spec)
  if path is None:
    raise UserError(f"model spec {spec!r} names no file; use keras:PATH or savedmodel:PATH")
  if file_kind(spec) == "savedmodel":
    from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
    return savedmodel.load(spec, path, input_shape, num_classes, strategy=strategy)
  model = inference.load(path, strategy=strategy)
  want = tuple(int(d) for d in input_shape)
  if tuple(model.input_shape[1:]) != want:
    raise UserError(f"--model={spec}: the model takes inputs {tuple(model.input_shape[1:])}, the "
                    f"dataset has {want}; use the dataset the model was trained on")
  if tuple(model.output_shape[1:]) != (int(num_classes),):
    raise UserError(f"--model={spec}: the model outputs {tuple(model.output_shape[1:])}, the "
                    f"dataset has {num_classes} classes; it must output one logit per class")
  return model


def spec_sha256(spec: str) -> str:
  """sha256 of the model a file spec names: of the `.keras` file, or over the files of a
  SavedModel directory (`savedmodel.tree_sha256`)."""
  path = file_path(spec)
  if file_kind(spec) == "savedmodel":
    from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
    savedmodel.check_exists(spec, path)
    return savedmodel.tree_sha256(path)
  return file_sha256(path)


def file_sha256(path: str) -> str:
  """sha256 of a model file (local or gs://), so the cache key follows the file's content."""
  import hashlib  # pylint: disable=import-outside-toplevel
  import os  # pylint: disable=import-outside-toplevel
  if "://" in path:  # gs:// and friends through tf.io.gfile; local files without TensorFlow.
    from tfhull import io  # pylint: disable=import-outside-toplevel
    if not io.exists(path):
      raise UserError(f"model file {path} does not exist; check --model=keras:PATH")
    return hashlib.sha256(io.read_bytes(path)).hexdigest()
  if not os.path.isfile(path):
    raise UserError(f"model file {path} does not exist; check --model=keras:PATH")
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class ParameterReport:
  """How over-parameterized a model is for n training examples of c classes."""
  params: int                   # trainable parameter count.
  ratio_to_samples: float       # params / n.
  ratio_to_constraints: float   # params / (n * c): one constraint per example and logit.


def parameter_report(model, n_train: int, num_classes: int) -> ParameterReport:
  """Trainable parameter count of `model` and its ratios to n_train and n_train * num_classes."""
  if n_train < 1 or num_classes < 1:
    raise ValueError(f"n_train ({n_train}) and num_classes ({num_classes}) must be >= 1")
  params = sum(_size(w.shape) for w in model.trainable_weights)
  return ParameterReport(params, params / n_train, params / (n_train * num_classes))


def _size(shape) -> int:
  n = 1
  for d in shape:
    n *= int(d)
  return n
