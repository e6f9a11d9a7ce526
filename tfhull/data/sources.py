"""Data sources, chosen by one spec string; each returns an unvalidated `Dataset`.

  digits        sklearn's 1,797 real 8x8 digit images (offline); stratified 1,347 / 450 split.
  tfds:NAME     a TensorFlow Datasets image dataset (mnist, fashion_mnist, cifar10, ...), splits
                train/test, read from --data_dir; downloads only with download=True.
  idx:DIR       MNIST-format IDX files in DIR (train-images-idx3-ubyte, ..., optionally .gz).
  npz:FILE      arrays x_train, y_train, x_test, y_test (+ optional class_names).
  toy2d:NAME    2-D toy data (moons, spirals, blobs), 1,000 points scaled into [0.05, 0.95]^2,
                stratified 750 / 250 split.

Images become float32 in [0, 1]: uint8 is divided by 255, floats must already lie in [0, 1].
TensorFlow and TFDS are imported only by the sources that need them.
"""

import gzip
import math
import zlib
from typing import Optional

import numpy as np

from tfhull.data.dataset import Dataset
from tfhull.data.transforms import seeded_rng
from tfhull.errors import UserError

SOURCES = ("digits", "tfds:NAME", "idx:DIR", "npz:FILE", "toy2d:NAME")
TOY2D = ("moons", "spirals", "blobs")
_TOY2D_SIZE = 1000
_TEST_FRACTION = 0.25
_VALID = ("valid sources: digits, tfds:NAME (e.g. tfds:mnist), idx:DIR, npz:FILE, "
          f"toy2d:{{{','.join(TOY2D)}}}")


def parse_spec(spec: str) -> tuple[str, str]:
  """"tfds:mnist" -> ("tfds", "mnist"); checks the form only (reads nothing)."""
  spec = (spec or "").strip()
  kind, _, arg = spec.partition(":")
  if kind == "digits" and not arg:
    return kind, ""
  if kind in ("tfds", "idx", "npz") and arg:
    return kind, arg
  if kind == "toy2d" and arg in TOY2D:
    return kind, arg
  if kind == "toy2d":
    raise UserError(f"unknown toy2d dataset {arg!r}; use one of toy2d:{', toy2d:'.join(TOY2D)}")
  raise UserError(f"unknown dataset {spec!r}; {_VALID}")


def input_shape(spec: str) -> Optional[tuple]:
  """The per-example input shape of a source when it is known without reading the data (digits,
  toy2d, a local npz header, a local idx: directory's train-images header); None otherwise
  (tfds, remote files: known once the data step ran)."""
  kind, arg = parse_spec(spec)
  if kind == "digits":
    return (8, 8, 1)
  if kind == "toy2d":
    return (2,)
  if kind == "idx" and "://" not in arg:
    return _idx_header_shape(arg)
  if kind == "npz" and "://" not in arg:
    import zipfile  # pylint: disable=import-outside-toplevel
    try:  # The .npy header of x_train only, not the array.
      with zipfile.ZipFile(arg) as zf, zf.open("x_train.npy") as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape = read(f)[0][1:]
    except Exception:  # pylint: disable=broad-except  (the data step reports a bad file)
      return None
    if shape is not None and len(shape) == 2:
      shape = (*shape, 1)
    return tuple(int(v) for v in shape) if shape is not None else None
  return None


def load_source(spec: str, *, data_dir: Optional[str] = None, download: bool = False,
                seed: int = 0) -> Dataset:
  """Loads the dataset named by `spec` (see the module docstring); raises UserError if unusable.

  Args:
    spec: source spec string.
    data_dir: TFDS data directory (tfds: only); None means TFDS's default.
    download: allow TFDS to download and prepare the data (needs internet).
    seed: seeds the train/test split of digits and toy2d, and toy2d generation.
  """
  kind, arg = parse_spec(spec)
  if kind == "digits":
    return load_digits(seed=seed)
  if kind == "toy2d":
    return load_toy2d(arg, seed=seed)
  if kind == "tfds":
    return load_tfds(arg, data_dir=data_dir, download=download)
  if kind == "idx":
    return load_idx(arg)
  return load_npz(arg)


def stratified_split(y: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Sorted int64 (train, test) indices with ceil(test_fraction * n) test items (as sklearn),
  spread over classes in proportion to their counts (largest remainder first).
  """
  rng = seeded_rng(seed, 1)
  classes, counts = np.unique(y, return_counts=True)
  exact = test_fraction * counts
  take = np.floor(exact).astype(np.int64)
  extra = int(np.ceil(test_fraction * len(y))) - take.sum()
  take[np.argsort(-(exact - take), kind="stable")[:extra]] += 1
  test = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                         for c, k in zip(classes, take)])
  mask = np.zeros(len(y), bool)
  mask[test] = True
  return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def _from_arrays(source: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...],
                 seed: int) -> Dataset:
  train, test = stratified_split(y, _TEST_FRACTION, seed)
  return Dataset(x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test],
                 class_names=class_names, source=source, train_index=train, test_index=test)


def load_digits(*, seed: int = 0) -> Dataset:
  """sklearn digits: (1347, 8, 8, 1) train / (450, 8, 8, 1) test, values 0..16 -> /16."""
  from sklearn import datasets  # ~1 s import; only this source needs it.
  d = datasets.load_digits()
  x = (d.images / 16.0).astype(np.float32)[..., None]
  y = d.target.astype(np.int32)
  return _from_arrays("digits", x, y, tuple(str(c) for c in range(10)), seed)


def _spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  y = np.arange(n) % 2
  t = np.sqrt(rng.uniform(0.0, 1.0, n)) * 3 * np.pi + 0.5
  x = np.stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)], axis=1)
  return x + rng.normal(0.0, 0.3, x.shape), y


def load_toy2d(name: str, *, seed: int = 0) -> Dataset:
  """2-D toy data: 1,000 points (750 train / 250 test), isotropically scaled into [0.05, 0.95]^2.

  moons: sklearn make_moons(noise=0.1); spirals: two interleaved arms, noise 0.3 before scaling;
  blobs: sklearn make_blobs with 3 centres, std 1.
  """
  from sklearn import datasets
  rs = int(seeded_rng(seed, 2).integers(2**31))
  if name == "moons":
    x, y = datasets.make_moons(_TOY2D_SIZE, noise=0.1, random_state=rs)
    names = ("upper", "lower")
  elif name == "spirals":
    x, y = _spirals(_TOY2D_SIZE, seeded_rng(seed, 2))
    names = ("arm_0", "arm_1")
  elif name == "blobs":
    x, y = datasets.make_blobs(_TOY2D_SIZE, centers=3, cluster_std=1.0, random_state=rs)
    names = ("blob_0", "blob_1", "blob_2")
  else:
    raise UserError(f"unknown toy2d dataset {name!r}; use one of toy2d:{', toy2d:'.join(TOY2D)}")
  lo, hi = x.min(axis=0), x.max(axis=0)
  x = 0.5 + (x - (lo + hi) / 2) * (0.9 / (hi - lo).max())
  return _from_arrays(f"toy2d:{name}", x.astype(np.float32), y.astype(np.int32), names, seed)


def to_unit_float(x: np.ndarray, what: str) -> np.ndarray:
  """uint8 -> float32 / 255; float -> float32 if finite and in [0, 1]; else UserError."""
  x = np.asarray(x)
  if x.dtype == np.uint8:
    return x.astype(np.float32) / 255.0
  if not np.issubdtype(x.dtype, np.floating):
    raise UserError(f"{what} has dtype {x.dtype}; expected uint8 (0..255) or floats in [0, 1]")
  if x.size and not np.isfinite(x).all():
    raise UserError(f"{what} contains NaN or Inf; clean the data")
  if x.size and (x.min() < 0.0 or x.max() > 1.0):
    raise UserError(f"{what} has values in [{x.min():g}, {x.max():g}], expected [0, 1]; "
                    "store uint8 images or divide by 255")
  return x.astype(np.float32)


def to_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
  """(n,) or (n, 1) integer class ids (integral floats accepted) -> (n,) int32; else UserError."""
  y = np.asarray(y)
  if y.ndim == 2 and y.shape[1] == 1:
    y = y[:, 0]
  if y.shape != (n,):
    raise UserError(f"{what} has shape {y.shape}, expected ({n},) class ids (one per example, "
                    "not one-hot)")
  if np.issubdtype(y.dtype, np.floating):
    if not (np.isfinite(y).all() and np.all(y == np.round(y))):
      raise UserError(f"{what} holds non-integer values; labels must be integer class ids")
  elif not np.issubdtype(y.dtype, np.integer):
    raise UserError(f"{what} has dtype {y.dtype}; labels must be integer class ids")
  if n and (y.min() < 0 or y.max() > np.iinfo(np.int32).max):
    raise UserError(f"{what} has labels in [{y.min()}, {y.max()}]; labels must be 0..k-1")
  return y.astype(np.int32)


def _images(x: np.ndarray, what: str) -> np.ndarray:
  """(n, H, W) -> (n, H, W, 1); (n, H, W, C) and (n, d) kept; float32 in [0, 1]."""
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim not in (2, 4):
    raise UserError(f"{what} has shape {x.shape}; expected (n, H, W), (n, H, W, C) or (n, d)")
  return to_unit_float(x, what)


def _assemble(source: str, x_train, y_train, x_test, y_test,
              class_names: Optional[tuple[str, ...]] = None) -> Dataset:
  """Arrays of one source -> Dataset, with class names 0..k-1 unless given."""
  y_train = to_labels(y_train, len(x_train), f"{source} y_train")
  y_test = to_labels(y_test, len(x_test), f"{source} y_test")
  if class_names is None:
    k = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    class_names = tuple(str(c) for c in range(k))
  return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 class_names=tuple(class_names), source=source,
                 train_index=np.arange(len(x_train), dtype=np.int64),
                 test_index=np.arange(len(x_test), dtype=np.int64))


def load_npz(path: str) -> Dataset:
  """Arrays x_train, y_train, x_test, y_test and optional class_names (strings) from `path`."""
  from tfhull import io  # Imports TensorFlow (gfile, so gs:// works).
  z = io.load_npz(path)
  missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z]
  if missing:
    raise UserError(f"{path} lacks arrays {missing} (has {sorted(z)}); save x_train, y_train, "
                    "x_test, y_test with numpy.savez")
  src = f"npz:{path}"
  names = None
  if "class_names" in z:
    if z["class_names"].dtype.kind not in "US" or z["class_names"].ndim != 1:
      raise UserError(f"{path}: class_names must be a 1-D string array, got "
                      f"{z['class_names'].dtype} {z['class_names'].shape}")
    names = tuple(str(c) for c in z["class_names"])
  return _assemble(src, _images(z["x_train"], f"{src} x_train"), z["y_train"],
                   _images(z["x_test"], f"{src} x_test"), z["y_test"], names)


# IDX (http://yann.lecun.com/exdb/mnist/): 2 zero bytes, dtype code, ndim, ndim big-endian uint32
# dims, then the data in C order. Only unsigned bytes (code 0x08) are supported.
_IDX_UBYTE = 0x08


def _idx_header_shape(directory: str) -> Optional[tuple]:
  """(H, W, 1) from the 16-byte header of a local train-images IDX file; None if there is no
  such readable file (the data step reports it)."""
  import os  # pylint: disable=import-outside-toplevel
  for stem in ("train-images-idx3-ubyte", "train-images.idx3-ubyte"):
    for ext in ("", ".gz"):
      path = os.path.join(directory, stem + ext)
      if not os.path.isfile(path):
        continue
      try:
        with (gzip.open(path, "rb") if ext else open(path, "rb")) as f:
          head = f.read(16)
      except (OSError, EOFError, zlib.error):
        return None
      if len(head) < 16 or head[:4] != bytes([0, 0, _IDX_UBYTE, 3]):
        return None
      dims = np.frombuffer(head, ">u4", 3, offset=4)
      return (int(dims[1]), int(dims[2]), 1)
  return None


def read_idx(path: str, ndim: int) -> np.ndarray:
  """Reads an IDX file (optionally gzipped) of unsigned bytes with `ndim` dims; UserError if bad."""
  from tfhull import io
  raw = io.read_bytes(path)
  if path.endswith(".gz"):
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
      raise UserError(f"{path} is not a valid gzip file ({e}); download it again") from e
  if len(raw) < 4:
    raise UserError(f"{path} is truncated ({len(raw)} bytes, no IDX header); download it again")
  if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] != ndim:
    raise UserError(f"{path} has magic number 0x{raw[:4].hex()}, expected 0x000008{ndim:02x} "
                    f"(unsigned-byte IDX with {ndim} dims); check the file name and contents")
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise UserError(f"{path} is truncated inside its header; download it again")
  dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
  size = math.prod(dims)  # Python ints: no overflow for huge headers.
  if len(raw) - header != size:
    what = "truncated" if len(raw) - header < size else "longer than its header says"
    raise UserError(f"{path} is {what}: header {dims} needs {size} data bytes, found "
                    f"{len(raw) - header}; download it again")
  return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def write_idx(path: str, array: np.ndarray, *, compress: Optional[bool] = None) -> None:
  """Writes a uint8 array as IDX (gzipped if `compress`, default: if `path` ends in .gz)."""
  from tfhull import io
  a = np.ascontiguousarray(array, np.uint8)
  raw = bytes([0, 0, _IDX_UBYTE, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.tobytes()
  if path.endswith(".gz") if compress is None else compress:
    raw = gzip.compress(raw, compresslevel=6)
  io.write_bytes(path, raw)


def _idx_file(directory: str, split: str, kind: str, ndim: int) -> str:
  from tfhull import io
  stems = (f"{split}-{kind}-idx{ndim}-ubyte", f"{split}-{kind}.idx{ndim}-ubyte")
  names = [s + ext for s in stems for ext in ("", ".gz")]
  for name in names:
    if io.exists(io.join(directory, name)):
      return io.join(directory, name)
  raise UserError(f"{directory} has no {names[0]}[.gz] (or {names[2]}[.gz]); idx:DIR needs "
                  "train-images, train-labels, t10k-images and t10k-labels IDX files")


def load_idx(directory: str) -> Dataset:
  """MNIST-format IDX files in `directory` -> (n, H, W, 1) images in [0, 1], labels int32."""
  from tfhull import io
  if not io.exists(directory):
    raise UserError(f"idx:{directory}: directory does not exist; pass a directory with MNIST IDX "
                    "files")
  arrays = {}
  for split in ("train", "t10k"):
    images = _idx_file(directory, split, "images", 3)
    labels = _idx_file(directory, split, "labels", 1)
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if len(x) != len(y):
      raise UserError(f"{images} has {len(x)} images but {labels} has {len(y)} labels; the files "
                      "do not belong together")
    arrays[split] = (x[..., None].astype(np.float32) / 255.0, y)
  return _assemble(f"idx:{directory}", arrays["train"][0], arrays["train"][1],
                   arrays["t10k"][0], arrays["t10k"][1])


def load_tfds(name: str, *, data_dir: Optional[str] = None, download: bool = False) -> Dataset:
  """A TFDS image dataset with `as_supervised` keys, splits train/test, images -> [0, 1].

  Never downloads unless `download`; unprepared data fails within seconds with a UserError.
  """
  import tensorflow_datasets as tfds  # ~3 s import; only this source needs it.
  where = data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
  how = (f"pass --data_dir with prepared TFDS data for {name} (or --download where the machine has "
         "internet), or use an idx:DIR or npz:FILE source")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(f"unknown TFDS dataset {name!r}; see https://www.tensorflow.org/datasets/"
                    "catalog or tfds.list_builders() for names") from e
  if download:
    try:
      builder.download_and_prepare()
    except Exception as e:  # Network and preparation errors of many kinds.
      raise UserError(f"could not download tfds:{name} into {where} ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200] if str(e) else ''}); {how}") from e
  keys = builder.info.supervised_keys
  if not keys or len(keys) != 2:
    raise UserError(f"tfds:{name} has no (image, label) supervised keys; convert it to npz:FILE")
  shape = getattr(builder.info.features[keys[0]], "shape", None)
  if not shape or None in shape:
    raise UserError(f"tfds:{name} inputs have shape {shape}; only fixed-size images are supported, "
                    "resize them and use npz:FILE")
  label = builder.info.features[keys[1]]
  names = getattr(label, "names", None)
  arrays = {}
  for split in ("train", "test"):
    try:
      ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except AssertionError as e:  # "could not find data in <data_dir>" when not prepared.
      raise UserError(f"tfds:{name} is not prepared in {where}; {how}") from e
    except (ValueError, KeyError) as e:  # e.g. no such split.
      raise UserError(f"tfds:{name} has no usable {split!r} split ({e}); use npz:FILE") from e
    xs, ys = [], []
    for x, y in tfds.as_numpy(ds.batch(4096)):
      xs.append(x)
      ys.append(y)
    if not xs:
      raise UserError(f"tfds:{name} {split} split is empty in {where}; {how}")
    arrays[split] = (_images(np.concatenate(xs), f"tfds:{name} {split} images"),
                     np.concatenate(ys))
  return _assemble(f"tfds:{name}", arrays["train"][0], arrays["train"][1], arrays["test"][0],
                   arrays["test"][1], tuple(names) if names else None)
