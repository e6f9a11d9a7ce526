"""Tests for the Haar wavelet representation and the representation spec."""

import numpy as np
import pytest
import tensorflow as tf

from tfhull.errors import UserError
from tfhull.representations import haar2d
from tfhull.representations import haar_features
from tfhull.representations import inverse_haar2d
from tfhull.representations import parse_representation
from tfhull.representations import Representation


def _images(n=6, h=8, w=16, c=3, seed=0):
  return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)


def test_known_2x2():
  x = np.array([[1., 2.], [3., 4.]], np.float32).reshape(1, 2, 2, 1)
  np.testing.assert_allclose(haar2d(x, 1).numpy()[0, ..., 0], [[5., -1.], [-2., 0.]])


def test_known_4x4_one_and_two_levels():
  x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
  one = [[5, 9, -1, -1], [21, 25, -1, -1], [-4, -4, 0, 0], [-4, -4, 0, 0]]
  two = [[30, -4, -1, -1], [-16, 0, -1, -1], [-4, -4, 0, 0], [-4, -4, 0, 0]]
  np.testing.assert_allclose(haar2d(x, 1).numpy()[0, ..., 0], one)
  np.testing.assert_allclose(haar2d(x, 2).numpy()[0, ..., 0], two)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_norms_distances_and_inverse(level):
  x = _images()
  y = haar2d(x, level).numpy()
  assert y.shape == x.shape
  np.testing.assert_allclose(np.linalg.norm(y.reshape(6, -1), axis=1),
                             np.linalg.norm(x.reshape(6, -1), axis=1), rtol=1e-5)
  for i, j in [(0, 1), (2, 5), (3, 4)]:
    np.testing.assert_allclose(np.linalg.norm(y[i] - y[j]), np.linalg.norm(x[i] - x[j]),
                               rtol=1e-5)
  np.testing.assert_allclose(inverse_haar2d(y, level).numpy(), x, atol=1e-5)


def test_channels_are_independent():
  x = _images(n=2, h=4, w=4, c=2)
  both = haar2d(x, 2).numpy()
  for k in range(2):
    np.testing.assert_allclose(both[..., k:k + 1], haar2d(x[..., k:k + 1], 2).numpy())


def test_jit_compile():
  x = _images(h=8, w=8)
  fwd = tf.function(lambda t: haar2d(t, 2), jit_compile=True)
  inv = tf.function(lambda t: inverse_haar2d(t, 2), jit_compile=True)
  y = fwd(tf.constant(x))
  np.testing.assert_allclose(y.numpy(), haar2d(x, 2).numpy(), atol=1e-6)
  np.testing.assert_allclose(inv(y).numpy(), x, atol=1e-5)


def test_odd_sizes_raise_or_pad():
  x = _images(n=2, h=6, w=5, c=1)
  with pytest.raises(UserError, match="lower level or pad=True"):
    haar2d(x, 1)
  with pytest.raises(UserError, match="positive integer"):
    haar2d(x, 0)
  y = haar2d(x, 2, pad=True).numpy()
  assert y.shape == (2, 8, 8, 1)
  np.testing.assert_allclose(np.linalg.norm(y.reshape(2, -1), axis=1),
                             np.linalg.norm(x.reshape(2, -1), axis=1), rtol=1e-5)
  np.testing.assert_allclose(inverse_haar2d(y, 2).numpy()[:, :6, :5], x, atol=1e-5)


def test_features_without_selection_keep_pixel_distances():
  xtr, xte = _images(n=5, h=8, w=8, c=1), _images(n=3, h=8, w=8, c=1, seed=1)[..., 0]
  tr, te, idx = haar_features(xtr, xte, level=2)
  assert tr.shape == (5, 64) and te.shape == (3, 64)
  np.testing.assert_array_equal(idx, np.arange(64))
  d_haar = np.linalg.norm(te[:, None] - tr[None], axis=-1)
  d_pix = np.linalg.norm(xte.reshape(3, 1, -1) - xtr.reshape(1, 5, -1), axis=-1)
  np.testing.assert_allclose(d_haar, d_pix, rtol=1e-5)


def test_top_k_picks_highest_training_variance():
  rng = np.random.default_rng(0)
  coeffs = np.full((200, 4, 4, 1), 0.5, np.float32)   # Constant: zero variance.
  flat = coeffs.reshape(200, 16)
  for pos, scale in [(9, 3.0), (2, 2.0), (14, 1.0)]:
    flat[:, pos] = scale * rng.normal(size=200)
  images = inverse_haar2d(coeffs, 2).numpy()
  test = images[:7] * 2
  tr, te, idx = haar_features(images, test, level=2, top_k=3)
  np.testing.assert_array_equal(idx, [9, 2, 14])
  np.testing.assert_allclose(tr, flat[:, idx], atol=1e-5)
  np.testing.assert_allclose(te, 2 * flat[:7, idx], atol=1e-5)
  # Ties break by index: identical training images give every coefficient zero variance.
  _, _, idx = haar_features(np.tile(images[:1], (4, 1, 1, 1)), test, level=2, top_k=5)
  np.testing.assert_array_equal(idx, [0, 1, 2, 3, 4])
  with pytest.raises(UserError, match=r"top_k must be an integer in \[1, 16\]"):
    haar_features(images, test, level=2, top_k=17)


@pytest.mark.parametrize("spec, expected", [
    ("pixel", Representation("pixel")),
    ("logits", Representation("logits")),
    ("haar:2", Representation("haar", level=2)),
    ("haar:1:top500", Representation("haar", level=1, top_k=500)),
    ("layer:dense_1", Representation("layer", layer="dense_1")),
])
def test_parse_good(spec, expected):
  assert parse_representation(spec) == expected
  assert parse_representation(spec).spec == spec


@pytest.mark.parametrize("spec", [
    "haar", "haar:x", "haar:0", "haar:1:top0", "haar:1:500", "haar:1:top5:x", "layer:",
    "pixel:2", "wavelet", ""])
def test_parse_bad(spec):
  with pytest.raises(UserError, match="valid forms: pixel, haar:LEVEL"):
    parse_representation(spec)
