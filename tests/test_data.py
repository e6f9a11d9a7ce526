"""Tests for the data layer (tfhull/data): sources, checks, subsampling, corruptions, save/load."""

import gzip
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from tfhull import data
from tfhull.data import transforms
from tfhull.errors import UserError


@pytest.fixture(scope="module")
def digits():
  return data.load_source("digits")


def _toy(n_train=40, n_test=20, k=4, shape=(3, 3, 1), seed=0):
  """A small valid Dataset with every class present in both splits."""
  rng = np.random.default_rng(seed)
  return data.Dataset(
      x_train=rng.random((n_train, *shape), dtype=np.float32),
      y_train=(np.arange(n_train) % k).astype(np.int32),
      x_test=rng.random((n_test, *shape), dtype=np.float32),
      y_test=(np.arange(n_test) % k).astype(np.int32),
      class_names=tuple(f"c{i}" for i in range(k)), source="toy",
      train_index=np.arange(n_train, dtype=np.int64), test_index=np.arange(n_test, dtype=np.int64))


# --- digits and toy2d ----------------------------------------------------------------------------


def test_digits_shapes_range_and_split(digits):
  assert digits.x_train.shape == (1347, 8, 8, 1) and digits.x_test.shape == (450, 8, 8, 1)
  assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
  assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
  assert digits.num_classes == 10 and digits.class_names == tuple("0123456789")
  assert digits.input_shape == (8, 8, 1) and digits.input_dim == 64
  assert digits.x_train_flat.shape == (1347, 64)
  both = np.concatenate([digits.train_index, digits.test_index])
  assert np.array_equal(np.sort(both), np.arange(1797))  # Disjoint and complete.
  counts = data.class_counts(digits.y_test, 10)
  assert sum(counts) == 450 and min(counts) >= 43 and max(counts) <= 47  # Stratified.
  data.validate(digits)


def test_digits_split_is_seeded(digits):
  again = data.load_source("digits", seed=0)
  other = data.load_source("digits", seed=1)
  assert np.array_equal(again.test_index, digits.test_index)
  assert np.array_equal(again.x_train, digits.x_train)
  assert not np.array_equal(other.test_index, digits.test_index)


def test_digits_pixels_match_sklearn(digits):
  from sklearn import datasets
  raw = datasets.load_digits()
  np.testing.assert_allclose(digits.x_test[..., 0], raw.images[digits.test_index] / 16.0, rtol=1e-6)
  assert np.array_equal(digits.y_test, raw.target[digits.test_index])


@pytest.mark.parametrize("name,k", [("moons", 2), ("spirals", 2), ("blobs", 3)])
def test_toy2d(name, k):
  ds = data.prepare(f"toy2d:{name}", seed=3)
  assert ds.x_train.shape == (750, 2) and ds.x_test.shape == (250, 2)
  assert ds.num_classes == k and ds.source == f"toy2d:{name}"
  assert ds.x_train.min() >= 0.05 - 1e-6 and ds.x_train.max() <= 0.95 + 1e-6
  assert np.array_equal(ds.x_train, data.prepare(f"toy2d:{name}", seed=3).x_train)
  assert not np.array_equal(ds.x_train, data.prepare(f"toy2d:{name}", seed=4).x_train)


@pytest.mark.parametrize("spec,needle", [
    ("mnist", "valid sources"), ("", "valid sources"), ("foo:bar", "valid sources"),
    ("tfds:", "valid sources"), ("toy2d:circles", "toy2d:moons"), ("digits:x", "valid sources")])
def test_unknown_spec(spec, needle):
  with pytest.raises(UserError, match=needle):
    data.load_source(spec)


def test_import_does_not_load_tensorflow():
  code = "import sys, tfhull.data; sys.exit('tensorflow' in sys.modules)"
  assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- TFDS ----------------------------------------------------------------------------------------


def test_tfds_mock_mnist(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=200):
    ds = data.prepare("tfds:mnist", data_dir=str(tmp_path), classes=["3", "8"], train_size=10)
  assert ds.x_train.shape == (10, 28, 28, 1) and ds.x_test.shape[1:] == (28, 28, 1)
  assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
  assert ds.class_names == ("3", "8") and ds.source == "tfds:mnist"
  assert data.class_counts(ds.y_train, 2) == [5, 5]


def test_tfds_mock_cifar10_full(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=30):
    ds = data.load_source("tfds:cifar10", data_dir=str(tmp_path))
  assert ds.x_train.shape == (30, 32, 32, 3) and ds.x_test.shape == (30, 32, 32, 3)
  assert ds.num_classes == 10 and np.array_equal(ds.train_index, np.arange(30))


def test_tfds_offline_fails_fast_without_download(tmp_path, monkeypatch):
  tfds = pytest.importorskip("tensorflow_datasets")

  def no_download(*args, **kwargs):
    raise AssertionError("download_and_prepare must not be called without download=True")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
  start = time.time()
  with pytest.raises(UserError, match="--data_dir") as err:
    data.prepare("tfds:mnist", data_dir=str(tmp_path))
  assert time.time() - start < 10
  assert "not prepared" in str(err.value) and "npz:" in str(err.value)
  assert "\n" not in str(err.value)


def test_tfds_unknown_name(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(UserError, match="unknown TFDS dataset 'no_such_dataset_xyz'.*list_builders"):
    data.load_source("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))


# --- IDX -----------------------------------------------------------------------------------------


def _idx_bytes(a: np.ndarray) -> bytes:
  """IDX encoding written independently of the library: magic, big-endian dims, bytes."""
  return struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def _write_mnist(directory, *, gz, dotted=False, n_train=30, n_test=12, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {"train-images": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
            "train-labels": (np.arange(n_train) % 3).astype(np.uint8),
            "t10k-images": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
            "t10k-labels": (np.arange(n_test) % 3).astype(np.uint8)}
  directory.mkdir(exist_ok=True)
  for stem, a in arrays.items():
    d = 3 if "images" in stem else 1
    name = f"{stem}.idx{d}-ubyte" if dotted else f"{stem}-idx{d}-ubyte"
    raw = _idx_bytes(a)
    if gz:
      (directory / (name + ".gz")).write_bytes(gzip.compress(raw))
    else:
      (directory / name).write_bytes(raw)
  return arrays


@pytest.mark.parametrize("gz,dotted", [(False, False), (True, False), (False, True), (True, True)])
def test_idx_round_trip(tmp_path, gz, dotted):
  arrays = _write_mnist(tmp_path / "mnist", gz=gz, dotted=dotted)
  ds = data.prepare(f"idx:{tmp_path / 'mnist'}")
  assert ds.x_train.shape == (30, 5, 4, 1) and ds.x_test.shape == (12, 5, 4, 1)
  np.testing.assert_array_equal(np.round(ds.x_train[..., 0] * 255).astype(np.uint8),
                                arrays["train-images"])
  np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels"])
  assert ds.class_names == ("0", "1", "2")


def test_write_idx_read_idx(tmp_path):
  a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
  for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
    data.write_idx(str(tmp_path / name), a)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / name), 3), a)
  assert (tmp_path / "a-idx3-ubyte").read_bytes() == _idx_bytes(a)


def _corrupt_file(path, how):
  raw = path.read_bytes()
  if how == "truncate":
    path.write_bytes(raw[:-7])
  elif how == "magic":
    path.write_bytes(raw[:2] + b"\x0d" + raw[3:])
  elif how == "header":
    path.write_bytes(raw[:6])
  elif how == "trailing":
    path.write_bytes(raw + b"\0")


@pytest.mark.parametrize("how,needle", [("truncate", "truncated"), ("magic", "magic number"),
                                        ("header", "truncated"), ("trailing", "longer")])
def test_idx_corrupt_file(tmp_path, how, needle):
  _write_mnist(tmp_path, gz=False)
  _corrupt_file(tmp_path / "train-images-idx3-ubyte", how)
  with pytest.raises(UserError, match=f"train-images-idx3-ubyte.*{needle}|{needle}"):
    data.load_source(f"idx:{tmp_path}")


def test_idx_errors(tmp_path):
  _write_mnist(tmp_path, gz=False)
  # Labels where images are expected: wrong magic (1 dim instead of 3).
  (tmp_path / "t10k-images-idx3-ubyte").write_bytes((tmp_path / "t10k-labels-idx1-ubyte")
                                                    .read_bytes())
  with pytest.raises(UserError, match="t10k-images-idx3-ubyte has magic number 0x00000801"):
    data.load_source(f"idx:{tmp_path}")
  _write_mnist(tmp_path, gz=False)
  (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(29, np.uint8)))
  with pytest.raises(UserError, match="has 30 images but .*train-labels-idx1-ubyte has 29"):
    data.load_source(f"idx:{tmp_path}")
  (tmp_path / "train-labels-idx1-ubyte").unlink()
  with pytest.raises(UserError, match="no train-labels-idx1-ubyte"):
    data.load_source(f"idx:{tmp_path}")
  with pytest.raises(UserError, match="does not exist"):
    data.load_source(f"idx:{tmp_path / 'missing'}")


def test_idx_bad_gzip(tmp_path):
  _write_mnist(tmp_path, gz=True)
  (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
  with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz is not a valid gzip"):
    data.load_source(f"idx:{tmp_path}")


# --- npz -----------------------------------------------------------------------------------------


def _npz(path, **overrides):
  rng = np.random.default_rng(0)
  arrays = {"x_train": rng.integers(0, 256, (12, 4, 4), dtype=np.uint8),
            "y_train": np.arange(12) % 3,
            "x_test": rng.integers(0, 256, (6, 4, 4), dtype=np.uint8),
            "y_test": np.arange(6) % 3}
  arrays.update(overrides)
  np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
  return arrays


def test_npz_uint8_round_trip(tmp_path):
  arrays = _npz(tmp_path / "d.npz", class_names=np.array(["cat", "dog", "emu"]))
  ds = data.prepare(f"npz:{tmp_path / 'd.npz'}")
  assert ds.x_train.shape == (12, 4, 4, 1) and ds.x_train.dtype == np.float32
  np.testing.assert_allclose(ds.x_test[..., 0] * 255, arrays["x_test"], atol=1e-4)
  assert ds.class_names == ("cat", "dog", "emu")
  assert np.array_equal(ds.y_train, arrays["y_train"])
  ds2 = data.prepare(f"npz:{tmp_path / 'd.npz'}", classes=["emu", "cat"])
  assert ds2.class_names == ("emu", "cat") and set(ds2.y_train) == {0, 1}


def test_npz_float_rgb_and_flat(tmp_path):
  x = np.random.default_rng(1).random((9, 2, 2, 3))
  _npz(tmp_path / "rgb.npz", x_train=x, x_test=x[:6], y_train=np.arange(9.0) % 3)
  ds = data.prepare(f"npz:{tmp_path / 'rgb.npz'}")
  assert ds.x_train.shape == (9, 2, 2, 3)
  np.testing.assert_allclose(ds.x_train, x.astype(np.float32))
  _npz(tmp_path / "flat.npz", x_train=x.reshape(9, -1), x_test=x[:6].reshape(6, -1),
       y_train=np.arange(9) % 3)
  assert data.prepare(f"npz:{tmp_path / 'flat.npz'}").input_shape == (12,)


@pytest.mark.parametrize("overrides,needle", [
    ({"x_test": None}, r"lacks arrays \['x_test'\]"),
    ({"x_train": np.full((12, 4, 4), np.nan)}, "NaN or Inf"),
    ({"x_test": np.full((6, 4, 4), np.inf)}, "NaN or Inf"),
    ({"x_train": np.full((12, 4, 4), 2.0)}, r"values in \[2, 2\], expected \[0, 1\]"),
    ({"x_train": np.zeros((12, 4, 4), np.int16)}, "dtype int16"),
    ({"x_train": np.zeros((12,), np.uint8)}, "shape"),
    ({"y_train": np.arange(11) % 3}, r"y_train has shape \(11,\), expected \(12,\)"),
    ({"y_train": np.eye(3)[np.arange(12) % 3]}, "not one-hot"),
    ({"y_test": np.arange(6) % 3 + 0.5}, "non-integer"),
    ({"y_test": np.array(list("abcabc"))}, "integer class ids"),
    ({"y_test": -(np.arange(6) % 3)}, "labels must be 0..k-1"),
    ({"x_test": np.zeros((6, 5, 4), np.uint8)}, "same shape"),
    ({"y_train": np.arange(12) % 3 * 2}, r"class\(es\) \['1', '3'\] have no train examples"),
    ({"class_names": np.array(["a", "b"])}, "there are 2 class names"),
])
def test_npz_bad_inputs(tmp_path, overrides, needle):
  _npz(tmp_path / "bad.npz", **overrides)
  with pytest.raises(UserError, match=needle):
    data.prepare(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_corrupt_or_missing_file(tmp_path):
  _npz(tmp_path / "d.npz")
  raw = (tmp_path / "d.npz").read_bytes()
  (tmp_path / "d.npz").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(UserError, match="corrupt"):
    data.load_source(f"npz:{tmp_path / 'd.npz'}")
  (tmp_path / "junk.npz").write_bytes(b"garbage")
  with pytest.raises(UserError, match="corrupt"):
    data.load_source(f"npz:{tmp_path / 'junk.npz'}")
  with pytest.raises(UserError, match="does not exist"):
    data.load_source(f"npz:{tmp_path / 'none.npz'}")
  np.savez(tmp_path / "obj.npz", x_train=np.array([{}], dtype=object), y_train=np.zeros(1),
           x_test=np.zeros(1), y_test=np.zeros(1))
  with pytest.raises(UserError, match="pickled"):
    data.load_source(f"npz:{tmp_path / 'obj.npz'}")


# --- validate ------------------------------------------------------------------------------------


def test_validate_errors():
  ds = _toy()
  data.validate(ds)
  x = ds.x_train.copy()
  x[0, 0, 0, 0] = np.nan
  with pytest.raises(UserError, match="x_train contains NaN"):
    data.validate(ds.replace(x_train=x))
  with pytest.raises(UserError, match="test split is empty"):
    data.validate(ds.replace(x_test=ds.x_test[:0], y_test=ds.y_test[:0],
                             test_index=ds.test_index[:0]))
  with pytest.raises(UserError, match="expected float32"):
    data.validate(ds.replace(x_train=ds.x_train.astype(np.float64)))
  with pytest.raises(UserError, match="at least 2"):
    data.validate(ds.replace(class_names=("only",)))


# --- subsample -----------------------------------------------------------------------------------


def test_subsample_classes_relabel(digits):
  ds = data.subsample(digits, classes=["8", 3])
  assert ds.class_names == ("8", "3")
  original = digits.y_train[np.searchsorted(digits.train_index, ds.train_index)]
  assert np.array_equal(np.where(original == 8, 0, 1), ds.y_train)
  assert set(original) == {3, 8}
  assert len(ds.y_test) == np.isin(digits.y_test, [3, 8]).sum()


def test_subsample_balanced_and_seeded(digits):
  ds = data.subsample(digits, train_size=101, test_size=30, seed=5)
  assert data.class_counts(ds.y_train, 10) == [11] + [10] * 9
  assert data.class_counts(ds.y_test, 10) == [3] * 10
  assert np.all(np.diff(ds.train_index) > 0)  # Original order kept.
  again = data.subsample(digits, train_size=101, test_size=30, seed=5)
  assert np.array_equal(again.train_index, ds.train_index)
  other = data.subsample(digits, train_size=101, test_size=30, seed=6)
  assert not np.array_equal(other.train_index, ds.train_index)
  assert data.subsample(digits) is digits


def test_subsample_by_name():
  ds = data.prepare("toy2d:blobs", classes=["blob_2", "blob_0"], train_size=10)
  assert ds.class_names == ("blob_2", "blob_0") and data.class_counts(ds.y_train, 2) == [5, 5]


@pytest.mark.parametrize("kwargs,needle", [
    ({"classes": ["11"]}, r"unknown class '11'; classes are ids 0..9"),
    ({"classes": ["cat", "3"]}, "unknown class 'cat'"),
    ({"classes": ["3", "3"]}, "more than once"),
    ({"classes": ["3"]}, "at least 2"),
    ({"train_size": 5000}, "larger than the 1347 train examples available"),
    ({"test_size": 451}, "larger than the 450 test examples available"),
    ({"classes": ["3", "8"], "train_size": 268},
     r"has only \d+ train examples, but a balanced train_size of 268 needs 134 per class"),
])
def test_subsample_errors(digits, kwargs, needle):
  with pytest.raises(UserError, match=needle):
    data.subsample(digits, **kwargs)


def test_subsample_class_without_examples():
  ds = _toy()
  ds = ds.replace(y_test=np.where(ds.y_test == 2, 1, ds.y_test).astype(np.int32))
  with pytest.raises(UserError, match="class 'c2' has no test examples"):
    data.subsample(ds, classes=["c1", "c2"])


@pytest.mark.parametrize("kwargs,needle", [
    ({"train_size": -1}, "negative"), ({"classes": ["1"]}, "at least 2"),
    ({"classes": ["1", "1"]}, "more than once"), ({"label_noise": 1.5}, r"outside \[0, 1\]"),
    ({"corruption": "blur"}, "unknown corruption"), ({"seed": -1}, "negative")])
def test_prepare_option_errors(kwargs, needle):
  with pytest.raises(UserError, match=needle):
    data.prepare("digits", **kwargs)


# --- corrupt -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction,n", [(0.0, 100), (0.25, 100), (0.333, 1000), (1.0, 37)])
def test_noisy_labels_exact_count(fraction, n):
  # Labels -1 cannot be redrawn (draws are 0..k-1), so every chosen example shows up.
  y = transforms.noisy_labels(np.full(n, -1), 10, fraction, np.random.default_rng(0))
  assert np.sum(y >= 0) == int(np.floor(fraction * n + 0.5))
  assert y[y >= 0].max(initial=0) < 10


def test_label_noise_train_only(digits):
  ds = data.corrupt(digits, label_noise=0.5, seed=1)
  m = round(0.5 * 1347)
  changed = int(np.sum(ds.y_train != digits.y_train))
  assert 0.8 * m < changed <= m  # About 9/10 of redrawn labels differ from the true one.
  assert np.array_equal(ds.y_train_clean, digits.y_train)
  assert ds.x_test is digits.x_test and ds.y_test is digits.y_test
  assert np.array_equal(ds.x_train, digits.x_train)
  assert ds.label_noise == 0.5 and ds.corruption == "none"
  assert data.summary(ds)["num_changed_labels"] == changed
  assert np.array_equal(data.corrupt(digits, label_noise=0.5, seed=1).y_train, ds.y_train)


def test_shuffled_pixels_one_permutation(digits):
  ds = data.corrupt(digits, corruption="shuffled_pixels", seed=2)
  a, b = digits.x_train_flat, ds.x_train_flat
  np.testing.assert_array_equal(np.sort(a, axis=1), np.sort(b, axis=1))  # Same pixel multisets.
  assert not np.array_equal(a, b)
  # One permutation for all: position-coded images all map to the same output.
  coded = np.tile(np.arange(64, dtype=np.float32) / 64, (5, 1)).reshape(5, 8, 8, 1)
  out = transforms.corrupt_inputs(coded, "shuffled_pixels", np.random.default_rng(0))
  assert np.all(out == out[:1]) and not np.array_equal(out[0], coded[0])
  assert ds.x_test is digits.x_test and np.array_equal(ds.y_train, digits.y_train)


def test_random_pixels_per_image_and_channels_kept():
  coded = np.tile(np.arange(16, dtype=np.float32) / 16, (6, 1)).reshape(6, 4, 4, 1)
  out = transforms.corrupt_inputs(coded, "random_pixels", np.random.default_rng(0))
  assert len({o.tobytes() for o in out}) == 6  # A different permutation per image.
  np.testing.assert_array_equal(np.sort(out.reshape(6, -1), 1), np.sort(coded.reshape(6, -1), 1))
  rgb = np.random.default_rng(1).random((3, 4, 4, 3), dtype=np.float32)
  for kind in ("shuffled_pixels", "random_pixels"):
    out = transforms.corrupt_inputs(rgb, kind, np.random.default_rng(0))
    for i in range(3):  # Each output pixel is an input (r, g, b) vector of the same image.
      src = {tuple(p) for p in rgb[i].reshape(-1, 3)}
      assert {tuple(p) for p in out[i].reshape(-1, 3)} == src


def test_gaussian_corruption(digits):
  ds = data.corrupt(digits, corruption="gaussian", seed=0)
  assert ds.x_train.shape == digits.x_train.shape and ds.x_train.dtype == np.float32
  assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
  assert abs(ds.x_train.mean() - digits.x_train.mean()) < 0.1
  assert ds.x_test is digits.x_test and ds.corruption == "gaussian"
  data.validate(ds)


def test_corrupt_unknown():
  with pytest.raises(UserError, match="unknown corruption 'blur'"):
    data.corrupt(_toy(), corruption="blur")


# --- save / load ---------------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
  ds = data.prepare("digits", classes=["1", "7"], train_size=50, label_noise=0.2,
                    corruption="random_pixels", seed=3)
  summary = data.save(ds, str(tmp_path))
  assert (tmp_path / "data.npz").exists() and (tmp_path / "dataset.json").exists()
  assert summary["train_shape"] == [50, 8, 8, 1] and summary["class_names"] == ["1", "7"]
  assert summary["train_counts"] == data.class_counts(ds.y_train, 2)
  assert summary["corruption"] == "random_pixels" and summary["label_noise"] == 0.2
  back = data.load(str(tmp_path))
  assert data.checksum(back) == data.checksum(ds) == summary["checksum"]
  for name in ("x_train", "y_train", "x_test", "y_test", "train_index", "test_index",
               "y_train_clean"):
    assert np.array_equal(getattr(back, name), getattr(ds, name)), name
  assert (back.class_names, back.source, back.corruption, back.label_noise) == (
      ds.class_names, ds.source, ds.corruption, ds.label_noise)


def test_load_detects_tampering(tmp_path):
  ds = _toy()
  data.save(ds, str(tmp_path))
  assert data.checksum(ds) != data.checksum(ds.replace(class_names=("a", "b", "c", "d")))
  tampered = ds.replace(y_test=ds.y_test[::-1].copy())
  data.save(tampered, str(tmp_path / "t"))
  (tmp_path / "t" / "dataset.json").write_bytes((tmp_path / "dataset.json").read_bytes())
  with pytest.raises(UserError, match="does not match the checksum"):
    data.load(str(tmp_path / "t"))
  with pytest.raises(UserError, match="does not exist"):
    data.load(str(tmp_path / "nothing"))


def test_idx_huge_header_dims_name_the_file_and_dims(tmp_path):
  """Header dims whose product overflows 64 bits: the message names the file and the dims."""
  path = tmp_path / "train-images-idx3-ubyte"
  dims = (2**32 - 1, 2**32 - 1, 2**32 - 1)
  path.write_bytes(bytes([0, 0, 8, 3]) + np.asarray(dims, ">u4").tobytes() + b"\0" * 16)
  with pytest.raises(UserError) as e:
    data.read_idx(str(path), 3)
  msg = str(e.value)
  assert "train-images-idx3-ubyte is truncated" in msg and str(dims) in msg, msg
  assert f"needs {(2**32 - 1) ** 3} data bytes, found 16" in msg and len(msg) <= 300


def test_idx_input_shape_from_the_header_alone(tmp_path):
  """A local idx: directory's input shape is read from 16 header bytes (no TensorFlow), so the
  shape-dependent flag checks run before the data step."""
  from tfhull.data import sources  # pylint: disable=import-outside-toplevel
  assert sources.input_shape(f"idx:{tmp_path}") is None
  images = np.zeros((3, 5, 7), np.uint8)
  (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(images))
  assert sources.input_shape(f"idx:{tmp_path}") == (5, 7, 1)
  (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x01" + b"\0" * 12)
  assert sources.input_shape(f"idx:{tmp_path}") is None
