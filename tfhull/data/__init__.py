"""The data layer: sources, checks, subsampling, corruptions and the saved form of a `Dataset`.

  ds = tfhull.data.prepare("digits", train_size=500, classes=["3", "8"], label_noise=0.2)
  summary = tfhull.data.save(ds, directory)      # data.npz + dataset.json
  ds = tfhull.data.load(directory)

Importing this package does not import TensorFlow; the tfds, idx, npz sources and save/load do.
"""

# Bump when outputs change for the same inputs (tests/test_graph.py checks; `python -m
# tfhull.versions --refresh`).
VERSION = "1"

from typing import Optional, Sequence, Union

from tfhull.data.dataset import Dataset
from tfhull.data.dataset import checksum
from tfhull.data.dataset import class_counts
from tfhull.data.dataset import flatten
from tfhull.data.dataset import load
from tfhull.data.dataset import save
from tfhull.data.dataset import summary
from tfhull.data.dataset import validate
from tfhull.data.sources import SOURCES
from tfhull.data.sources import TOY2D
from tfhull.data.sources import input_shape
from tfhull.data.sources import load_source
from tfhull.data.sources import parse_spec
from tfhull.data.sources import read_idx
from tfhull.data.sources import write_idx
from tfhull.data.transforms import CORRUPTIONS
from tfhull.data.transforms import corrupt
from tfhull.data.transforms import resolve_classes
from tfhull.data.transforms import subsample


def prepare(spec: str, *, data_dir: Optional[str] = None, download: bool = False,
            train_size: int = 0, test_size: int = 0,
            classes: Optional[Sequence[Union[int, str]]] = None, label_noise: float = 0.0,
            corruption: str = "none", seed: int = 0) -> Dataset:
  """load_source -> validate -> subsample -> corrupt (train split only) -> validate.

  Raises UserError for any bad input, before anything is written.
  """
  check_options(spec, train_size=train_size, test_size=test_size, classes=classes,
                label_noise=label_noise, corruption=corruption, seed=seed)
  ds = validate(load_source(spec, data_dir=data_dir, download=download, seed=seed))
  ds = subsample(ds, train_size=train_size, test_size=test_size, classes=classes, seed=seed)
  ds = corrupt(ds, label_noise=label_noise, corruption=corruption, seed=seed)
  return validate(ds)


def check_options(spec: str, *, train_size: int = 0, test_size: int = 0,
                  classes: Optional[Sequence[Union[int, str]]] = None, label_noise: float = 0.0,
                  corruption: str = "none", seed: int = 0) -> None:
  """Cheap checks before any data is read: spec form (and that an idx:/npz: path exists), sizes,
  classes list, noise, corruption, seed; UserError if one fails.
  """
  from tfhull.errors import UserError
  kind, arg = parse_spec(spec)
  if kind in ("idx", "npz"):
    if "://" in arg:
      from tfhull import io  # Imports TensorFlow (gfile): only remote paths need it here.
      exists = io.exists(arg)
    else:
      import os  # pylint: disable=import-outside-toplevel
      exists = os.path.exists(arg)
    if not exists:
      what = "directory" if kind == "idx" else "file"
      raise UserError(f"{kind}:{arg}: {what} does not exist; check the path in --dataset")
  for name, size in (("train_size", train_size), ("test_size", test_size)):
    if size < 0:
      raise UserError(f"--{name}={size} is negative; pass 0 (all) or a positive size")
  if classes:
    if len(classes) < 2:
      raise UserError(f"--classes selects {len(classes)} class; give at least 2")
    if len(set(map(str, classes))) != len(classes):
      raise UserError(f"--classes={','.join(map(str, classes))} gives a class more than once; "
                      "list each class once")
  if not 0.0 <= label_noise <= 1.0:
    raise UserError(f"--label_noise={label_noise} is outside [0, 1]; pass a fraction")
  if corruption not in CORRUPTIONS:
    raise UserError(f"unknown corruption {corruption!r}; use one of {', '.join(CORRUPTIONS)}")
  if seed < 0:
    raise UserError(f"--seed={seed} is negative; pass a seed >= 0")
