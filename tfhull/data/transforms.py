"""Class selection, balanced subsampling and the Zhang et al. (2017) training-set corruptions.

Zhang, Bengio, Hardt, Recht, Vinyals, "Understanding deep learning requires rethinking
generalization", ICLR 2017. Corruptions touch the training split only; the test split stays clean
so that test accuracy measures generalisation from the corrupted training set.
"""

from typing import Optional, Sequence, Union

import numpy as np

from tfhull.data.dataset import Dataset
from tfhull.data.dataset import class_counts
from tfhull.errors import UserError

CORRUPTIONS = ("none", "shuffled_pixels", "random_pixels", "gaussian")

# Independent random streams per operation, so changing one option does not reshuffle another.
_SUBSAMPLE_TRAIN, _SUBSAMPLE_TEST, _LABEL_NOISE, _CORRUPTION = 11, 12, 21, 22


def seeded_rng(seed: int, stream: int) -> np.random.Generator:
  """A generator for (seed, stream); UserError for a negative seed."""
  if seed < 0:
    raise UserError(f"seed {seed} is negative; pass --seed >= 0")
  return np.random.default_rng([seed, stream])


def resolve_classes(class_names: Sequence[str], classes: Sequence[Union[int, str]]) -> list[int]:
  """Class ids for `classes`, each a class name or an integer id; UserError if unknown/duplicate.

  A string is matched against the names first, then read as an id ("3" is class "3" for digits).
  """
  ids = []
  for c in classes:
    if isinstance(c, str) and c.strip() in class_names:
      ids.append(list(class_names).index(c.strip()))
      continue
    try:
      i = int(c)
    except (TypeError, ValueError):
      i = -1
    if not 0 <= i < len(class_names) or (isinstance(c, float) and c != i):
      raise UserError(f"unknown class {c!r}; classes are ids 0..{len(class_names) - 1} or names "
                      f"{list(class_names)}")
    ids.append(i)
  if len(set(ids)) != len(ids):
    dup = sorted({class_names[i] for i in ids if ids.count(i) > 1})
    raise UserError(f"class(es) {dup} given more than once in --classes; list each class once")
  if len(ids) < 2:
    raise UserError(f"--classes selects {len(ids)} class; give at least 2")
  return ids


def _balanced(y: np.ndarray, num_classes: int, size: int, rng: np.random.Generator,
              split: str, class_names: Sequence[str]) -> np.ndarray:
  """Sorted indices of `size` examples split as evenly as possible over classes (0: all).

  The first size % k classes (in class order) get one example more than the others.
  """
  counts = class_counts(y, num_classes)
  for c, n in enumerate(counts):
    if n == 0:
      raise UserError(f"class {class_names[c]!r} has no {split} examples; drop it from --classes")
  if size == 0:
    return np.arange(len(y), dtype=np.int64)
  if size < 0:
    raise UserError(f"{split}_size {size} is negative; pass 0 (all) or a positive size")
  if size > len(y):
    raise UserError(f"{split}_size {size} is larger than the {len(y)} {split} examples available; "
                    f"pass --{split}_size <= {len(y)} (0 = all)")
  quota = np.full(num_classes, size // num_classes)
  quota[:size % num_classes] += 1
  short = [c for c in range(num_classes) if counts[c] < quota[c]]
  if short:
    c = short[0]
    raise UserError(f"class {class_names[c]!r} has only {counts[c]} {split} examples, but a "
                    f"balanced {split}_size of {size} needs {quota[c]} per class; pass "
                    f"--{split}_size <= {num_classes * min(counts)} (0 = all)")
  picked = [rng.choice(np.flatnonzero(y == c), quota[c], replace=False) for c in range(num_classes)]
  return np.sort(np.concatenate(picked)).astype(np.int64)


def subsample(ds: Dataset, *, train_size: int = 0, test_size: int = 0,
              classes: Optional[Sequence[Union[int, str]]] = None, seed: int = 0) -> Dataset:
  """Keeps `classes` (ids or names; relabelled 0..k-1 in the order given) and draws balanced
  subsets of `train_size` / `test_size` examples (0 = all), seeded; kept examples stay in order.
  """
  if classes:
    ids = resolve_classes(ds.class_names, classes)
    remap = np.full(ds.num_classes, -1, np.int64)
    remap[ids] = np.arange(len(ids))
    keep_tr = np.flatnonzero(remap[ds.y_train] >= 0)
    keep_te = np.flatnonzero(remap[ds.y_test] >= 0)
    # Class membership follows the clean labels; noisy labels are remapped only if kept.
    ds = ds.replace(
        x_train=ds.x_train[keep_tr], y_train=remap[ds.y_train[keep_tr]].astype(np.int32),
        x_test=ds.x_test[keep_te], y_test=remap[ds.y_test[keep_te]].astype(np.int32),
        train_index=ds.train_index[keep_tr], test_index=ds.test_index[keep_te],
        y_train_clean=(None if ds.y_train_clean is None
                       else remap[ds.y_train_clean[keep_tr]].astype(np.int32)),
        class_names=tuple(ds.class_names[i] for i in ids))
  tr = _balanced(ds.y_train, ds.num_classes, train_size, seeded_rng(seed, _SUBSAMPLE_TRAIN),
                 "train", ds.class_names)
  te = _balanced(ds.y_test, ds.num_classes, test_size, seeded_rng(seed, _SUBSAMPLE_TEST),
                 "test", ds.class_names)
  if len(tr) == len(ds.y_train) and len(te) == len(ds.y_test):
    return ds
  return ds.replace(
      x_train=ds.x_train[tr], y_train=ds.y_train[tr], x_test=ds.x_test[te], y_test=ds.y_test[te],
      train_index=ds.train_index[tr], test_index=ds.test_index[te],
      y_train_clean=None if ds.y_train_clean is None else ds.y_train_clean[tr])


def noisy_labels(y: np.ndarray, num_classes: int, fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
  """Copy of `y` where exactly round(fraction * n) examples, chosen without replacement, get a
  label drawn uniformly from all `num_classes` classes (it may equal the true one, as in Zhang
  et al.; so about fraction * (k - 1) / k of the labels actually change).
  """
  if not 0.0 <= fraction <= 1.0:
    raise UserError(f"label_noise {fraction} is outside [0, 1]; pass a fraction")
  n = len(y)
  m = int(np.floor(fraction * n + 0.5))
  out = np.array(y, np.int32, copy=True)
  chosen = rng.choice(n, m, replace=False)
  out[chosen] = rng.integers(0, num_classes, m)
  return out


def corrupt_inputs(x: np.ndarray, corruption: str, rng: np.random.Generator) -> np.ndarray:
  """Zhang et al. input corruptions of (n, ...) float32 inputs in [0, 1].

  shuffled_pixels: one random permutation of pixel positions, the same for every image;
  random_pixels: an independent random permutation per image (a pixel is its channel vector, so
    each image's multiset of pixels is kept in both cases; (n, d) data permutes the d features);
  gaussian: i.i.d. N(mean, std) with the scalar mean and std of all of `x`, clipped to [0, 1].
  """
  if corruption == "none":
    return x
  n = x.shape[0]
  # (n, positions, channels): images keep their channel vectors together.
  px = x.reshape(n, -1, x.shape[-1]) if x.ndim == 4 else x.reshape(n, -1, 1)
  if corruption == "shuffled_pixels":
    out = px[:, rng.permutation(px.shape[1])]
  elif corruption == "random_pixels":
    perm = np.argsort(rng.random((n, px.shape[1])), axis=1)
    out = np.take_along_axis(px, perm[..., None], axis=1)
  elif corruption == "gaussian":
    out = rng.normal(float(x.mean()), float(x.std()), x.shape)
    out = np.clip(out, 0.0, 1.0)
  else:
    raise UserError(f"unknown corruption {corruption!r}; use one of {', '.join(CORRUPTIONS)}")
  return np.ascontiguousarray(out.reshape(x.shape), np.float32)


def corrupt(ds: Dataset, *, label_noise: float = 0.0, corruption: str = "none",
            seed: int = 0) -> Dataset:
  """Applies label noise and/or an input corruption to the training split only (test untouched).

  The labels before noise are kept in `y_train_clean`; see `noisy_labels`, `corrupt_inputs`.
  """
  if corruption not in CORRUPTIONS:
    raise UserError(f"unknown corruption {corruption!r}; use one of {', '.join(CORRUPTIONS)}")
  if not 0.0 <= label_noise <= 1.0:
    raise UserError(f"label_noise {label_noise} is outside [0, 1]; pass a fraction")
  if label_noise == 0.0 and corruption == "none":
    return ds
  y = ds.y_train
  if label_noise > 0.0:
    y = noisy_labels(ds.clean_labels, ds.num_classes, label_noise,
                     seeded_rng(seed, _LABEL_NOISE))
  return ds.replace(
      x_train=corrupt_inputs(ds.x_train, corruption, seeded_rng(seed, _CORRUPTION)), y_train=y,
      y_train_clean=ds.clean_labels, label_noise=float(label_noise),
      corruption=corruption if corruption != "none" else ds.corruption)
