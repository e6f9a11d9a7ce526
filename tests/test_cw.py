"""Carlini-Wagner L2: success, invariants, input ranks, batching, targeted mode, minimality."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhull.data
from tfhull import models
from tfhull import training
from tfhull.attacks.cw import carlini_wagner_l2
from tfhull.errors import UserError


@pytest.fixture(scope="module")
def digits():
  return tfhull.data.prepare("digits", train_size=500, test_size=100, seed=0)


@pytest.fixture(scope="module")
def model(digits):
  cfg = training.TrainConfig(epochs=200, batch_size=64, until_interpolation=True)
  return training.train("mlp:width=128,depth=2", digits, cfg, verbose=0).model


def predict(model_fn, x):
  return np.asarray(model_fn(tf.constant(x))).argmax(1)


@pytest.fixture(scope="module")
def correct(digits, model):
  """The correctly classified test points (x (n, 8, 8, 1), y (n,))."""
  keep = predict(model, digits.x_test) == digits.y_test
  assert keep.mean() > 0.85
  return digits.x_test[keep], digits.y_test[keep]


@pytest.fixture(scope="module")
def untargeted(model, correct):
  return carlini_wagner_l2(model, *correct)


def check_invariants(model_fn, x, y, res, *, targeted=False):
  n = len(x)
  assert res.x_adv.shape == x.shape and res.x_adv.dtype == np.float32
  assert res.l2.shape == res.const.shape == res.success.shape == (n,)
  assert res.l2.dtype == res.const.dtype == np.float32 and res.success.dtype == bool
  assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
  norm = np.sqrt(np.sum(np.square(res.x_adv.astype(np.float64) - x).reshape(n, -1), 1))
  np.testing.assert_allclose(res.l2, norm, rtol=1e-5, atol=1e-6)
  pred = predict(model_fn, res.x_adv)
  np.testing.assert_array_equal(res.success, pred == y if targeted else pred != y)
  # Where no adversarial was found the clean x comes back unchanged.
  np.testing.assert_array_equal(res.x_adv[~res.success], x[~res.success])
  assert np.all(res.l2[~res.success] == 0)
  assert np.all(np.isfinite(res.const)) and np.all(res.const > 0)


def test_images_untargeted(model, correct, untargeted):
  x, y = correct
  check_invariants(model, x, y, untargeted)
  assert untargeted.success.mean() > 0.9               # accuracy under attack < 0.1.
  assert 0 < np.median(untargeted.l2[untargeted.success]) < 2.0


def test_flat_inputs_match_images(model, correct, untargeted):
  x, y = correct
  flat = keras.Sequential([keras.Input((64,)), keras.layers.Reshape((8, 8, 1)), model])
  xf = x.reshape(len(x), 64)
  res = carlini_wagner_l2(flat, xf, y)
  check_invariants(flat, xf, y, res)
  assert res.success.mean() > 0.9
  np.testing.assert_allclose(np.median(res.l2), np.median(untargeted.l2), rtol=0.05)


def test_padded_batches_equal_one_batch(model, digits):
  # Without early abort (a batch-level rule) every example's optimization is independent of
  # the others, so 4 batches of 32 (the last one padded) give the same result as one of 100.
  x, y = digits.x_test, digits.y_test
  one = carlini_wagner_l2(model, x, y, batch_size=100, abort_early=False)
  four = carlini_wagner_l2(model, x, y, batch_size=32, abort_early=False, progress=True)
  check_invariants(model, x, y, four)
  np.testing.assert_array_equal(four.success, one.success)
  np.testing.assert_allclose(four.l2, one.l2, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(four.const, one.const)
  # Misclassified clean points succeed at (almost) no cost.
  wrong = predict(model, x) != y
  assert np.all(four.success[wrong]) and np.all(four.l2[wrong] < 1e-3)


def test_rgb_inputs():
  cnn = models.build("cnn:width=8,depth=2", (8, 8, 3), 10)
  x = np.random.default_rng(0).uniform(size=(20, 8, 8, 3)).astype(np.float32)
  y = predict(cnn, x)
  res = carlini_wagner_l2(cnn, x, y, batch_size=8, binary_search_steps=3, max_iterations=50)
  check_invariants(cnn, x, y, res)


def test_targeted(model, correct):
  x, y = correct
  target = (y + 1) % 10
  res = carlini_wagner_l2(model, x, target, targeted=True)
  check_invariants(model, x, target, res, targeted=True)
  assert res.success.mean() > 0.9


def test_smaller_than_pgd(model, correct, untargeted):
  from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
  x, y = correct
  x_pgd = projected_gradient_descent(model, tf.constant(x), eps=3.0, eps_iter=0.1, nb_iter=50,
                                     norm=2, clip_min=0.0, clip_max=1.0, y=tf.constant(y),
                                     rand_init=False, sanity_checks=False).numpy()
  both = (predict(model, x_pgd) != y) & untargeted.success
  assert both.mean() > 0.8
  l2_pgd = np.sqrt(np.sum(np.square(x_pgd - x).reshape(len(x), -1), 1))
  assert np.median(untargeted.l2[both]) < np.median(l2_pgd[both])
  assert np.mean(untargeted.l2[both] <= l2_pgd[both]) > 0.9


@pytest.mark.parametrize("case", ["y_length", "y_rank", "nan", "above", "below", "label_high",
                                  "label_low", "batch_size", "model_shape"])
def test_bad_inputs(model, correct, case):
  x, y = correct[0][:4].copy(), correct[1][:4].copy()
  kw = {}
  if case == "y_length":
    y = y[:3]
  elif case == "y_rank":
    y = y[:, None]
  elif case == "nan":
    x[0, 0, 0, 0] = np.nan
  elif case == "above":
    x[0, 0, 0, 0] = 1.5
  elif case == "below":
    x[0, 0, 0, 0] = -0.1
  elif case == "label_high":
    y[0] = 10
  elif case == "label_low":
    y[0] = -1
  elif case == "batch_size":
    kw["batch_size"] = 0
  elif case == "model_shape":
    x = x.reshape(4, 64)
  with pytest.raises(UserError) as err:
    carlini_wagner_l2(model, x, y, **kw)
  assert "\n" not in str(err.value)
