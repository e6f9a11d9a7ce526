"""Tests for tfhull.models: spec grammar, parameter counts, features/logits, fitting, seeding."""

import numpy as np
import pytest

from tfhull import models
from tfhull.errors import UserError

DIGITS = (8, 8, 1)
CIFAR = (32, 32, 3)


def _count(model) -> int:
  return models.parameter_report(model, 1, 1).params


def _mlp(d, w, k, c):
  return d * w + w + (k - 1) * (w * w + w) + w * c + c


def _cnn(ch, w, k, c):
  return 9 * ch * w + w + (k - 1) * (9 * w * w + w) + w * c + c


def _resnet(depth, ch, c):
  """Convs have no bias; BN adds 2 trainable params (gamma, beta) per channel; option-B 1x1
  conv + BN projections at the two downsampling blocks."""
  n = (depth - 2) // 6
  total = 9 * ch * 16 + 2 * 16
  f_in = 16
  for f in (16, 32, 64):
    for b in range(n):
      fi = f_in if b == 0 else f
      total += 9 * fi * f + 2 * f + 9 * f * f + 2 * f
      if fi != f:
        total += fi * f + 2 * f
    f_in = f
  return total + 64 * c + c


def _wrn(depth, k, ch, c):
  """Pre-activation: BN(2 per channel) before each conv; 1x1 projection (no BN) on shape change."""
  n = (depth - 4) // 6
  total = 9 * ch * 16
  f_in = 16
  for s, f in enumerate((16 * k, 32 * k, 64 * k)):
    for b in range(n):
      fi = f_in if b == 0 else f
      total += 2 * fi + 9 * fi * f + 2 * f + 9 * f * f
      if fi != f or (s > 0 and b == 0):
        total += fi * f
    f_in = f
  return total + 2 * 64 * k + 64 * k * c + c


def test_parse_spec_defaults_and_types():
  assert models.parse_spec("mlp:width=1024,depth=3") == ("mlp", {"width": 1024, "depth": 3})
  assert models.parse_spec(" cnn : width = 64 ") == ("cnn", {"width": 64, "depth": 3})
  assert models.parse_spec("wide_resnet:depth=28,widen=10") == (
      "wide_resnet", {"depth": 28, "widen": 10})
  assert models.parse_spec("resnet") == ("resnet", {"depth": 20})
  assert models.parse_spec("linear") == ("linear", {})
  assert set(models.names()) == {"mlp", "cnn", "resnet", "wide_resnet", "linear"}
  assert set(models.REGISTRY) == set(models.names())


@pytest.mark.parametrize("spec, needle", [
    ("transformer", "valid models: mlp, cnn, resnet, wide_resnet, linear"),
    ("", "valid models"),
    ("mlp:height=3", "unknown key 'height' for mlp; valid keys: width, depth"),
    ("linear:width=3", "valid keys: none"),
    ("mlp:width=abc", "width must be an int, got 'abc'"),
    ("mlp:width=1.5", "width must be an int"),
    ("mlp:width", "must be KEY=VALUE"),
    ("mlp:width=", "must be KEY=VALUE"),
    ("mlp:width=8,", "must be KEY=VALUE"),
    ("mlp:width=8,width=9", "given twice"),
    ("mlp:width=0", "width must be >= 1"),
    ("cnn:depth=0", "depth must be >= 1"),
    ("resnet:depth=18", "depth must be 6n+2"),
    ("resnet:depth=2", "depth must be 6n+2"),
    ("wide_resnet:depth=20", "depth must be 6n+4"),
    ("wide_resnet:widen=0", "widen must be >= 1"),
])
def test_bad_specs_raise_user_error(spec, needle):
  with pytest.raises(UserError) as info:
    models.parse_spec(spec)
  message = str(info.value)
  assert needle in message and "\n" not in message


@pytest.mark.parametrize("spec, shape", [
    ("cnn", (2,)), ("resnet", (64,)), ("wide_resnet", (8, 8)), ("mlp", (0,)),
])
def test_model_that_does_not_fit_the_input_raises(spec, shape):
  with pytest.raises(UserError):
    models.build(spec, shape, 10)


def test_bad_num_classes_raises():
  with pytest.raises(UserError, match="num_classes"):
    models.build("linear", DIGITS, 1)


def test_exact_parameter_counts():
  assert _count(models.build("linear", DIGITS, 10)) == 64 * 10 + 10
  for w, k in ((16, 1), (32, 3)):
    assert _count(models.build(f"mlp:width={w},depth={k}", DIGITS, 10)) == _mlp(64, w, k, 10)
  assert _count(models.build("mlp:width=8,depth=2", (2,), 3)) == _mlp(2, 8, 2, 3)
  assert _count(models.build("cnn:width=8,depth=2", DIGITS, 10)) == _cnn(1, 8, 2, 10)
  # ResNet-20, CIFAR-10: 269,722 with the paper's parameter-free shortcuts, + 2,752 for the two
  # 1x1 conv + BN projections (16*32 + 2*32 + 32*64 + 2*64) = 272,474 (trainable, incl. BN
  # gamma/beta; the BN moving mean/variance are not trainable).
  resnet20 = models.build("resnet:depth=20", CIFAR, 10)
  assert _resnet(20, 3, 10) == 272_474
  assert _count(resnet20) == 272_474
  assert _count(models.build("resnet:depth=8", DIGITS, 10)) == _resnet(8, 1, 10)
  assert _count(models.build("wide_resnet:depth=10,widen=1", DIGITS, 10)) == _wrn(10, 1, 1, 10)
  # WRN-16-4 on CIFAR-10: the paper's 2.7M.
  assert _count(models.build("wide_resnet:depth=16,widen=4", CIFAR, 10)) == _wrn(16, 4, 3, 10) \
      == 2_748_890


def test_parameter_report_ratios():
  report = models.parameter_report(models.build("linear", DIGITS, 10), 200, 10)
  assert report == models.ParameterReport(650, 650 / 200, 650 / 2000)


def test_parameters_grow_with_width_and_depth():
  for family in ("mlp", "cnn"):
    by_width = [_count(models.build(f"{family}:width={w},depth=2", DIGITS, 10)) for w in (4, 8, 16)]
    by_depth = [_count(models.build(f"{family}:width=8,depth={k}", DIGITS, 10)) for k in (1, 2, 3)]
    assert by_width == sorted(set(by_width)) and by_depth == sorted(set(by_depth))
  resnets = [_count(models.build(f"resnet:depth={d}", DIGITS, 10)) for d in (8, 14)]
  wrns = [_count(models.build(f"wide_resnet:depth=10,widen={k}", DIGITS, 10)) for k in (1, 2)]
  assert resnets[0] < resnets[1] and wrns[0] < wrns[1]


@pytest.mark.parametrize("spec, shape, dim", [
    ("linear", DIGITS, 64), ("linear", (2,), 2), ("mlp:width=12,depth=2", (2,), 12),
    ("mlp:width=12,depth=1", DIGITS, 12), ("cnn:width=6,depth=6", DIGITS, 6),
    ("resnet:depth=8", DIGITS, 64), ("wide_resnet:depth=10,widen=2", DIGITS, 128),
])
def test_features_and_logits(spec, shape, dim):
  model = models.build(spec, shape, 7)
  assert model.get_layer("features").output.shape == (None, dim)
  assert model.get_layer("logits") is model.layers[-1]
  x = np.random.default_rng(0).random((3,) + shape).astype("float32")
  logits = np.asarray(model(x, training=False))
  assert logits.shape == (3, 7) and np.all(np.isfinite(logits))
  assert not np.allclose(logits.sum(axis=1), 1.0)  # Logits, not probabilities.


def test_build_is_deterministic_per_seed():
  def weights(seed):
    return [np.asarray(w) for w in models.build("cnn:width=4,depth=2", DIGITS, 10,
                                                 seed=seed).trainable_weights]
  a, b, c = weights(3), weights(3), weights(4)
  assert all(np.array_equal(u, v) for u, v in zip(a, b))
  assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_small_mlp_fits_digits_subset():
  import keras  # pylint: disable=import-outside-toplevel
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  digits = datasets.load_digits()
  x = (digits.data[:200] / 16.0).astype("float32")
  y = digits.target[:200]
  model = models.build("mlp:width=64,depth=1", (64,), 10, seed=0)
  model.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  model.fit(x, y, batch_size=200, epochs=150, verbose=0)
  assert np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y) == 1.0


@pytest.mark.parametrize("spec,shape", [
    ("linear", (8, 8, 1)), ("mlp:width=8,depth=3", (2,)), ("cnn:width=4,depth=5", (8, 8, 1)),
    ("resnet:depth=8", (8, 8, 1)), ("wide_resnet:depth=10,widen=2", (16, 16, 3))])
def test_layer_names_without_building_match_a_fresh_build(spec, shape):
  """`registry.layer_names` (used by the flag checks, no TensorFlow) names the layers a fresh
  Keras session gives the built model, so `layer:NAME` is checked before training."""
  import keras  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  keras.backend.clear_session()
  built = sorted(layer.name for layer in models.build(spec, shape, 3).layers)
  assert built == sorted(registry.layer_names(spec, shape))


def test_estimated_parameter_counts_are_close():
  from tfhull.study import config  # pylint: disable=import-outside-toplevel
  for spec, shape in [("linear", (8, 8, 1)), ("mlp:width=32,depth=3", (8, 8, 1)),
                      ("cnn:width=8,depth=2", (8, 8, 1)), ("wide_resnet:depth=10,widen=2",
                                                           (16, 16, 3))]:
    exact = models.build(spec, shape, 10).count_params()
    assert abs(config.model_parameters(spec, shape) - exact) <= 0.05 * exact, spec
