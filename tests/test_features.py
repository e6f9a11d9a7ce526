"""Representations of a dataset: pixel, Haar, layer and logits spaces, and their saved form."""

import numpy as np
import pytest

import tfhull.data
from tfhull import io
from tfhull import models
from tfhull import representations as reps
from tfhull.errors import UserError


@pytest.fixture(scope="module")
def digits():
  return tfhull.data.prepare("digits", train_size=200, test_size=50, seed=0)


@pytest.fixture(scope="module")
def model(digits):
  return models.build("mlp:width=48,depth=2", digits.input_shape, digits.num_classes, seed=0)


def _space(spec, ds, model=None):
  return reps.compute(reps.parse_representation(spec), ds, model, batch_size=32)


def _pairwise(a):
  return np.sqrt(((a[:, None, :].astype(np.float64) - a[None, :, :]) ** 2).sum(-1))


@pytest.mark.parametrize("spec,dim", [("pixel", 64), ("haar:1", 64), ("haar:2:top10", 10),
                                      ("layer:features", 48), ("logits", 10)])
def test_spaces_have_the_declared_shapes(digits, model, spec, dim):
  space = _space(spec, digits, model)
  assert space.spec == spec and space.dim == dim
  assert space.splits["train"].shape == (200, dim) and space.splits["test"].shape == (50, dim)
  assert space.splits["train"].dtype == np.float32


def test_full_haar_preserves_distances_and_top_k_is_a_coordinate_selection(digits):
  pixel, haar = _space("pixel", digits), _space("haar:2", digits)
  np.testing.assert_allclose(_pairwise(haar.splits["test"]), _pairwise(pixel.splits["test"]),
                             atol=1e-5)
  top = _space("haar:2:top10", digits)
  np.testing.assert_array_equal(top.splits["train"],
                                haar.splits["train"][:, top.info["coefficients"]])
  # A selection can only shrink distances.
  assert np.all(_pairwise(top.splits["test"]) <= _pairwise(haar.splits["test"]) + 1e-5)


def test_layer_spaces_match_the_model_outputs(digits, model):
  logits = _space("logits", digits, model)
  np.testing.assert_allclose(logits.splits["test"], model.predict(digits.x_test, verbose=0),
                             rtol=1e-5, atol=1e-5)


def test_model_spaces_need_a_model_and_an_existing_layer(digits, model):
  assert reps.needs_model(["pixel", "layer:features"]) and not reps.needs_model(["haar:1"])
  with pytest.raises(UserError, match="needs a trained model"):
    _space("layer:features", digits)
  with pytest.raises(UserError, match="no layer 'conv9'"):
    _space("layer:conv9", digits, model)


def test_save_load_roundtrip_and_selection(digits, model, tmp_path):
  spaces = [_space(s, digits, model) for s in ("pixel", "haar:1:top16", "layer:features")]
  summary = reps.save(str(tmp_path), spaces, reps.labels_of(digits), digits.num_classes)
  assert summary["spaces"] == {"pixel": 64, "haar:1:top16": 16, "layer:features": 48}
  feats = reps.load(str(tmp_path))
  assert list(feats.spaces) == ["pixel", "haar:1:top16", "layer:features"]
  for s in spaces:
    for split in ("train", "test"):
      np.testing.assert_array_equal(feats.spaces[s.spec].splits[split], s.splits[split])
  np.testing.assert_array_equal(feats.labels["test"], digits.y_test)
  assert feats.num_classes == 10
  only = reps.load(str(tmp_path), ["layer:features"])
  assert list(only.spaces) == ["layer:features"]
  with pytest.raises(UserError, match="has no space logits"):
    reps.load(str(tmp_path), ["logits"])


def test_saved_spaces_are_checked(digits, tmp_path):
  good = _space("pixel", digits)
  with pytest.raises(UserError, match="name a space twice"):
    reps.save(str(tmp_path / "a"), [good, good], reps.labels_of(digits), 10)
  bad = reps.Space("pixel", {"train": np.full((3, 2), np.nan, np.float32),
                             "test": np.zeros((1, 2), np.float32)}, {})
  with pytest.raises(UserError, match="non-finite"):
    reps.save(str(tmp_path / "b"), [bad], reps.labels_of(digits), 10)
  reps.save(str(tmp_path / "c"), [good], reps.labels_of(digits), 10)
  io.save_npz(str(tmp_path / "c" / "space_pixel.npz"),
              {"train": np.zeros((5, 64), np.float32), "test": good.splits["test"]})
  with pytest.raises(UserError, match="rerun with --force=features"):
    reps.load(str(tmp_path / "c"))


@pytest.mark.parametrize("spec", ["pixel", "haar:1:top16", "layer:features"])
def test_extra_splits_are_mapped_like_the_test_split(digits, model, spec):
  # Mapping the test images again as an extra split gives exactly the test coordinates.
  space = reps.compute(reps.parse_representation(spec), digits, model,
                       extra={"again": digits.x_test[:7]}, batch_size=32)
  np.testing.assert_allclose(space.splits["again"], space.splits["test"][:7], rtol=1e-6,
                             atol=1e-6)
