"""Maps a dataset into the spaces where hull distances are measured, and their saved form.

  spaces = [compute(parse_representation(s), ds, model) for s in ("pixel", "haar:1:top32",
                                                                   "layer:features")]
  save(directory, spaces, labels_of(ds))
  feats = load(directory); feats.spaces["layer:features"].splits["test"]   # (q, k) float32

A space holds one (rows, k) float32 array per split ("train", "test"; later splits such as
adversarial examples are added by name), all in the same coordinates.
"""

import dataclasses
import re
from typing import Mapping, Optional, Sequence

import numpy as np

from tfhull.errors import UserError
from tfhull.representations.haar import haar_features
from tfhull.representations.haar import parse_representation
from tfhull.representations.haar import Representation

INDEX_FILE = "representation.json"
LABELS_FILE = "labels.npz"


@dataclasses.dataclass(frozen=True, eq=False)
class Space:
  """One representation of every split.

  Attributes:
    spec: canonical representation spec, e.g. "haar:1:top32".
    splits: split name -> (rows, k) float32 array.
    info: JSON-able facts (dimension, Haar coefficient indices, source layer, ...).
  """
  spec: str
  splits: Mapping[str, np.ndarray]
  info: Mapping

  @property
  def dim(self) -> int:
    return int(next(iter(self.splits.values())).shape[1])


@dataclasses.dataclass(frozen=True, eq=False)
class Features:
  """A loaded Representation artifact: its spaces and the labels of each split."""
  spaces: Mapping[str, Space]
  labels: Mapping[str, np.ndarray]   # split -> (rows,) int labels (train: the training labels).
  num_classes: int


def labels_of(ds) -> dict:
  """Split -> labels of a `tfhull.data.Dataset` (train: the labels the model was trained on)."""
  return {"train": np.asarray(ds.y_train, np.int32), "test": np.asarray(ds.y_test, np.int32),
          "train_clean": np.asarray(ds.clean_labels, np.int32)}


def needs_model(specs: Sequence[str]) -> bool:
  return any(parse_representation(s).kind in ("layer", "logits") for s in specs)


def compute(rep: Representation, ds, model=None, *, extra: Optional[Mapping] = None,
            only_extra: bool = False, batch_size: int = 512, strategy=None) -> Space:
  """The `rep` coordinates of `ds`'s train and test splits (and of `extra` input splits).

  Args:
    rep: parsed spec (pixel | haar:L[:topK] | layer:NAME | logits).
    ds: a `tfhull.data.Dataset`.
    model: Keras model, needed for layer: and logits spaces.
    extra: split name -> (rows, *input_shape) inputs mapped the same way (e.g. adversarial
      examples); a Haar selection is the one chosen on the training split.
    only_extra: map only the `extra` splits (train and test are another artifact's).
    batch_size, strategy: for model inference.
  Raises:
    UserError: a model space without a model, a missing layer, Haar levels that do not fit.
  """
  inputs = {} if only_extra else {"train": ds.x_train, "test": ds.x_test}
  inputs.update(extra or {})
  if rep.kind == "pixel":
    return Space(rep.spec, {k: v.reshape(len(v), -1).astype(np.float32)
                            for k, v in inputs.items()},
                 {"dim": ds.input_dim, "source": "pixels"})
  if rep.kind == "haar":
    splits, idx = {}, None
    for name, images in inputs.items():
      if name != "train":
        train, splits[name], idx = haar_features(ds.x_train, images, rep.level, rep.top_k,
                                                 pad=True)
        if not only_extra:
          splits["train"] = train
    return Space(rep.spec, splits,
                 {"dim": int(train.shape[1]),
                  "source": f"orthonormal Haar, {rep.level} level(s)",
                  "coefficients": idx.tolist() if rep.top_k is not None else "all"})
  if model is None:
    raise UserError(f"representation {rep.spec} needs a trained model; run the train step or "
                    "pass --model_artifact")
  from tfhull import models  # pylint: disable=import-outside-toplevel
  layer = rep.layer if rep.kind == "layer" else "logits"
  splits = {k: models.predict(model, v, layer=layer, batch_size=batch_size, strategy=strategy)
            for k, v in inputs.items()}
  return Space(rep.spec, splits, {"dim": int(next(iter(splits.values())).shape[1]),
                                  "source": f"layer {layer} of {model.name}"})


def file_name(spec: str) -> str:
  """A portable file name for a space: haar:1:top32 -> space_haar_1_top32.npz."""
  return "space_" + re.sub(r"[^A-Za-z0-9]+", "_", spec).strip("_") + ".npz"


def save(directory: str, spaces: Sequence[Space], labels: Mapping[str, np.ndarray],
         num_classes: int) -> dict:
  """Writes each space to its npz, the labels and the index JSON; returns a summary."""
  from tfhull import io  # pylint: disable=import-outside-toplevel
  specs = [s.spec for s in spaces]
  if len(set(specs)) != len(specs):
    raise UserError(f"representations {specs} name a space twice; list each once")
  for s in spaces:
    for split, arr in s.splits.items():
      if not np.all(np.isfinite(arr)):
        raise UserError(f"space {s.spec}, split {split}: non-finite values (the model diverged?); "
                        "retrain with a lower --learning_rate")
  index = []
  io.gfile.makedirs(directory)
  for s in spaces:
    io.save_npz(io.join(directory, file_name(s.spec)), dict(s.splits))
    index.append({"spec": s.spec, "file": file_name(s.spec), "dim": s.dim,
                  "rows": {k: int(v.shape[0]) for k, v in s.splits.items()}, "info": dict(s.info)})
  io.save_npz(io.join(directory, LABELS_FILE), dict(labels))
  io.write_json(io.join(directory, INDEX_FILE), {"spaces": index, "num_classes": int(num_classes)})
  return {"spaces": {e["spec"]: e["dim"] for e in index}, "num_classes": int(num_classes),
          "rows": index[0]["rows"] if index else {}}


def load(directory: str, specs: Optional[Sequence[str]] = None) -> Features:
  """Reads a saved representation (all spaces, or those in `specs`), checking shapes.

  Raises:
    UserError: a space that is not there, or files that disagree with the index.
  """
  from tfhull import io  # pylint: disable=import-outside-toplevel
  index = io.read_json(io.join(directory, INDEX_FILE))
  entries = {e["spec"]: e for e in index["spaces"]}
  wanted = list(entries) if not specs else [parse_representation(s).spec for s in specs]
  missing = [s for s in wanted if s not in entries]
  if missing:
    raise UserError(f"{directory} has no space {', '.join(missing)}; it has "
                    f"{', '.join(entries)} (add it to --representations)")
  labels = io.load_npz(io.join(directory, LABELS_FILE))
  spaces = {}
  for spec in wanted:
    e = entries[spec]
    splits = io.load_npz(io.confined_path(directory, e["file"]))
    for split, arr in splits.items():
      if arr.ndim != 2 or arr.shape != (e["rows"].get(split), e["dim"]):
        raise UserError(f"{directory}/{e['file']}: split {split} has shape {arr.shape}, the index "
                        f"says ({e['rows'].get(split)}, {e['dim']}); rerun with --force=features")
    spaces[spec] = Space(spec, splits, e["info"])
  return Features(spaces, labels, int(index["num_classes"]))
