"""The `Dataset` record, its checks, checksum and on-disk form (`data.npz` + `dataset.json`).

Images are float32 in [0, 1], shape (n, H, W, C); toy and other feature-vector data are (n, d).
Labels are int32 class ids in [0, num_classes). The test split is never corrupted.
"""

import dataclasses
import hashlib
from typing import Any, Optional

import numpy as np

from tfhull.errors import UserError

DATA_FILE = "data.npz"
SUMMARY_FILE = "dataset.json"


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """A train/test split with provenance.

  Attributes:
    x_train: (n, *input_shape) float32 in [0, 1].
    y_train: (n,) int32 labels used for training (noisy if `label_noise` > 0).
    x_test: (m, *input_shape) float32 in [0, 1]; never corrupted.
    y_test: (m,) int32 labels.
    class_names: names of classes 0..k-1.
    source: the spec string the data came from, e.g. "digits", "tfds:mnist".
    train_index: (n,) int64 indices into the source's train split.
    test_index: (m,) int64 indices into the source's test split.
    y_train_clean: (n,) int32 labels before label noise (None: same as `y_train`).
    corruption: "none" or the input corruption applied to `x_train` (see `corrupt`).
    label_noise: fraction of training labels that were redrawn at random.
  """
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  class_names: tuple[str, ...]
  source: str
  train_index: np.ndarray
  test_index: np.ndarray
  y_train_clean: Optional[np.ndarray] = None
  corruption: str = "none"
  label_noise: float = 0.0

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(int(d) for d in self.x_train.shape[1:])

  @property
  def input_dim(self) -> int:
    return int(np.prod(self.input_shape))

  @property
  def clean_labels(self) -> np.ndarray:
    """(n,) int32 training labels before label noise."""
    return self.y_train if self.y_train_clean is None else self.y_train_clean

  @property
  def x_train_flat(self) -> np.ndarray:
    return flatten(self.x_train)

  @property
  def x_test_flat(self) -> np.ndarray:
    return flatten(self.x_test)

  def replace(self, **changes) -> "Dataset":
    return dataclasses.replace(self, **changes)


def flatten(x: np.ndarray) -> np.ndarray:
  """(n, *shape) -> (n, prod(shape)), a view where possible."""
  return np.reshape(x, (x.shape[0], -1))


def class_counts(y: np.ndarray, num_classes: int) -> list[int]:
  """Examples per class, length `num_classes`."""
  return np.bincount(np.asarray(y, np.int64), minlength=num_classes)[:num_classes].tolist()


def validate(ds: Dataset) -> Dataset:
  """Raises UserError unless `ds` is well formed; returns it unchanged.

  Checks: shapes agree, no empty split, x float32 finite in [0, 1], labels int in
  [0, num_classes), every class present in both splits.
  """
  src = ds.source
  if ds.num_classes < 2:
    raise UserError(f"{src}: {ds.num_classes} class(es); a classification dataset needs at least 2")
  for split, x, y, idx in (("train", ds.x_train, ds.y_train, ds.train_index),
                           ("test", ds.x_test, ds.y_test, ds.test_index)):
    if x.ndim < 2:
      raise UserError(f"{src}: x_{split} has shape {x.shape}; expected (n, H, W, C) or (n, d)")
    if x.shape[0] == 0:
      raise UserError(f"{src}: the {split} split is empty; supply data for both splits")
    if not x[0].size:
      raise UserError(f"{src}: x_{split} has shape {x.shape}: examples with no features; check "
                      "the file")
    if y.shape != (x.shape[0],) or idx.shape != (x.shape[0],):
      raise UserError(f"{src}: x_{split} has {x.shape[0]} examples but y_{split} has shape "
                      f"{y.shape} (index {idx.shape}); labels must be (n,)")
    if x.dtype != np.float32 or not np.issubdtype(y.dtype, np.integer):
      raise UserError(f"{src}: x_{split} is {x.dtype}, y_{split} is {y.dtype}; expected float32 "
                      "inputs and integer labels")
    if not np.isfinite(x).all():
      raise UserError(f"{src}: x_{split} contains NaN or Inf; clean the data")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
      raise UserError(f"{src}: x_{split} values lie in [{lo:g}, {hi:g}], expected [0, 1]; "
                      "scale the data (uint8 images: divide by 255)")
    if y.min() < 0 or y.max() >= ds.num_classes:
      raise UserError(f"{src}: y_{split} has labels in [{y.min()}, {y.max()}] but there are "
                      f"{ds.num_classes} class names; labels must be 0..{ds.num_classes - 1}")
    counts = class_counts(y, ds.num_classes)
    empty = [ds.class_names[c] for c, n in enumerate(counts) if n == 0]
    if empty:
      raise UserError(f"{src}: class(es) {empty} have no {split} examples; drop them with "
                      "--classes or supply more data")
  if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
    raise UserError(f"{src}: train inputs are {ds.x_train.shape[1:]} but test inputs are "
                    f"{ds.x_test.shape[1:]}; both splits need the same shape")
  if ds.y_train_clean is not None and ds.y_train_clean.shape != ds.y_train.shape:
    raise UserError(f"{src}: y_train_clean has shape {ds.y_train_clean.shape}, expected "
                    f"{ds.y_train.shape}")
  return ds


def _arrays(ds: Dataset) -> dict[str, np.ndarray]:
  return {
      "x_train": np.ascontiguousarray(ds.x_train, np.float32),
      "y_train": np.ascontiguousarray(ds.y_train, np.int32),
      "x_test": np.ascontiguousarray(ds.x_test, np.float32),
      "y_test": np.ascontiguousarray(ds.y_test, np.int32),
      "train_index": np.ascontiguousarray(ds.train_index, np.int64),
      "test_index": np.ascontiguousarray(ds.test_index, np.int64),
      "y_train_clean": np.ascontiguousarray(ds.clean_labels, np.int32),
  }


def checksum(ds: Dataset) -> str:
  """sha256 (hex) over every array's name, dtype, shape and bytes, and the class names."""
  h = hashlib.sha256()
  for name, a in _arrays(ds).items():
    h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  h.update("|".join(ds.class_names).encode())
  return h.hexdigest()


def summary(ds: Dataset) -> dict[str, Any]:
  """JSON summary: shapes, dtype, classes, counts per split, provenance and checksum."""
  return {
      "source": ds.source,
      "train_shape": list(ds.x_train.shape),
      "test_shape": list(ds.x_test.shape),
      "input_shape": list(ds.input_shape),
      "dtype": str(ds.x_train.dtype),
      "num_classes": ds.num_classes,
      "class_names": list(ds.class_names),
      "train_counts": class_counts(ds.y_train, ds.num_classes),
      "test_counts": class_counts(ds.y_test, ds.num_classes),
      "corruption": ds.corruption,
      "label_noise": float(ds.label_noise),
      "num_changed_labels": int(np.sum(ds.y_train != ds.clean_labels)),
      "checksum": checksum(ds),
      "headline": ["source", "train_shape", "test_shape", "num_classes", "corruption",
                   "label_noise"],
  }


def save(ds: Dataset, directory: str) -> dict[str, Any]:
  """Writes `data.npz` and `dataset.json` into `directory`; returns the summary."""
  from tfhull import io  # Imports TensorFlow (gfile); deferred so `tfhull.data` stays light.
  io.gfile.makedirs(directory)
  arrays = _arrays(ds)
  arrays.update(class_names=np.array(ds.class_names, dtype=str), source=np.array(ds.source),
                corruption=np.array(ds.corruption),
                label_noise=np.array(ds.label_noise, np.float64))
  io.save_npz(io.join(directory, DATA_FILE), arrays)
  out = summary(ds)
  io.write_json(io.join(directory, SUMMARY_FILE), out)
  return out


def load(directory: str) -> Dataset:
  """Reads a dataset written by `save`; checks the checksum against `dataset.json` if present."""
  from tfhull import io
  path = io.join(directory, DATA_FILE)
  z = io.load_npz(path)
  missing = sorted({"x_train", "y_train", "x_test", "y_test", "train_index", "test_index",
                    "class_names", "source"} - set(z))
  if missing:
    raise UserError(f"{path} lacks arrays {missing}; it was not written by tfhull.data.save, "
                    "rerun the data step")
  ds = Dataset(
      x_train=z["x_train"], y_train=z["y_train"], x_test=z["x_test"], y_test=z["y_test"],
      class_names=tuple(str(c) for c in z["class_names"]), source=str(z["source"][()]),
      train_index=z["train_index"], test_index=z["test_index"],
      y_train_clean=z.get("y_train_clean"),
      corruption=str(z["corruption"][()]) if "corruption" in z else "none",
      label_noise=float(z["label_noise"]) if "label_noise" in z else 0.0)
  meta_path = io.join(directory, SUMMARY_FILE)
  if io.exists(meta_path):
    want = io.read_json(meta_path).get("checksum")
    if want and want != checksum(ds):
      raise UserError(f"{path} does not match the checksum in {meta_path}; the data was modified, "
                      "rerun the data step with --force=data")
  return ds
