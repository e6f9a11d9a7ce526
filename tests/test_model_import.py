"""Bring your own model: `--model=keras:PATH` through the flags, the config and the study graph."""

import dataclasses
import hashlib

import keras
import numpy as np
import pytest

from tfhull import artifacts
from tfhull import models
from tfhull import representations
from tfhull import study
from tfhull.errors import UserError


def _save(path, seed=0, classes=10):
  """A tiny untrained model with a non-standard layer name (`hidden`) and a `features` layer."""
  x = inputs = keras.Input((8, 8, 1))
  x = keras.layers.Flatten()(x)
  x = keras.layers.Dense(16, activation="relu", name="hidden",
                         kernel_initializer=keras.initializers.HeNormal(seed=seed))(x)
  x = keras.layers.Dense(8, activation="relu", name="features",
                         kernel_initializer=keras.initializers.HeNormal(seed=seed + 1))(x)
  out = keras.layers.Dense(classes, name="logits")(x)
  model = keras.Model(inputs, out, name="mine")
  model.save(path)
  return model


def _config(path, root):
  from components import common  # pylint: disable=import-outside-toplevel
  common.define_all()
  v = common.FLAGS.flag_values_dict()
  v.update(model=f"keras:{path}", train_size=100, test_size=30, output_root=str(root),
           representations=["layer:features", "layer:hidden"], hull_query_splits=["test"])
  return common.study_config(v)


def test_keras_model_flag_gives_a_model_artifact_and_features_of_any_layer(tmp_path):
  path = str(tmp_path / "mine.keras")
  original = _save(path)
  cfg = _config(path, tmp_path / "runs")
  cfg.check()
  g = study.build(cfg)
  sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
  assert g.nodes["train"].params == {"model": f"keras:{path}", "model_sha256": sha}
  done = study.run(g, ["features/layer:features", "features/layer:hidden"], cfg)
  art = artifacts.load(done["train"].uri, "Model")
  assert art.summary["model_sha256"] == sha and art.summary["epochs_run"] == 0
  assert art.summary["params"] == 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10
  assert art.metadata["params"]["model_sha256"] == sha  # In the cache key.
  ds_x = None
  for spec, dim in (("layer:features", 8), ("layer:hidden", 16)):
    rep = representations.load(done[f"features/{spec}"].uri, [spec])
    space = rep.spaces[spec]
    assert space.dim == dim and space.splits["train"].shape[0] == 100
    if spec == "layer:hidden":
      import tfhull.data  # pylint: disable=import-outside-toplevel
      ds_x = tfhull.data.load(done["data"].uri).x_test
      np.testing.assert_allclose(space.splits["test"], models.predict(original, ds_x,
                                                                      layer="hidden"), atol=1e-5)
  # Same file: cached; changed weights at the same path: a new train key.
  assert study.run(study.build(cfg), ["train"], cfg)["train"].uri == done["train"].uri
  _save(path, seed=7)
  assert study.build(cfg).nodes["train"].params["model_sha256"] != sha


def test_keras_model_flag_errors(tmp_path):
  with pytest.raises(UserError, match="no such file"):
    _config(str(tmp_path / "missing.keras"), tmp_path).check()
  with pytest.raises(UserError, match="give the file"):
    models.parse_spec("keras:")
  path = str(tmp_path / "three.keras")
  _save(path, classes=3)
  with pytest.raises(UserError, match="3 classes|outputs"):
    models.load_file(f"keras:{path}", (8, 8, 1), 10)
  with pytest.raises(UserError, match="takes inputs"):
    models.load_file(f"keras:{path}", (4, 4, 1), 3)
  # A layer the file does not have fails before any work, naming the file's layers.
  cfg = _config(path, tmp_path / "runs")
  cfg = dataclasses.replace(cfg, features=dataclasses.replace(
      cfg.features, representations=("layer:nope",)))
  with pytest.raises(UserError, match="no layer 'nope'.*hidden"):
    cfg.check()
