"""Bring your own model: `--model=keras:PATH` and `--model=savedmodel:PATH` through the flags, the
config and the study graph."""

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


def _config(path, root, kind="keras"):
  from components import common  # pylint: disable=import-outside-toplevel
  common.define_all()
  v = common.FLAGS.flag_values_dict()
  v.update(model=f"{kind}:{path}", train_size=100, test_size=30, output_root=str(root),
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


def _export(path, seed=0, classes=10, outputs=("logits", "features", "hidden")):
  """The `_save` model as a SavedModel whose serving_default signature returns a dict of the
  named layers' outputs; returns the Keras model."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  model = _save(path + ".keras", seed=seed, classes=classes)
  both = keras.Model(model.inputs, {k: model.get_layer(k).output for k in outputs})

  class Module(tf.Module):

    def __init__(self, net):
      super().__init__()
      self.net = net

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
    def serve(self, x):
      return self.net(x)

  module = Module(both)
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
  return model


def test_savedmodel_flag_gives_the_original_logits_features_and_gradients(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tfhull.data  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "sm")
  original = _export(path)
  spec = f"savedmodel:{path}"
  cfg = _config(path, tmp_path / "runs", kind="savedmodel")
  cfg.check()
  g = study.build(cfg)
  sha = g.nodes["train"].params["model_sha256"]
  assert sha == models.spec_sha256(spec) and len(sha) == 64
  done = study.run(g, ["features/layer:features", "features/layer:hidden"], cfg)
  art = artifacts.load(done["train"].uri, "Model")
  assert art.summary["model_format"] == "savedmodel" and art.summary["model_sha256"] == sha
  assert art.summary["params"] == 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10
  ds = tfhull.data.load(done["data"].uri)
  for spec_, layer in (("layer:features", "features"), ("layer:hidden", "hidden")):
    space = representations.load(done[f"features/{spec_}"].uri, [spec_]).spaces[spec_]
    np.testing.assert_allclose(space.splits["test"], models.predict(original, ds.x_test,
                                                                    layer=layer), atol=1e-5)
  # Loaded back from the artifact's copy: the original logits and input gradients.
  model = models.load_artifact(art)
  np.testing.assert_allclose(models.predict(model, ds.x_test), models.predict(original, ds.x_test),
                             atol=1e-5)
  x = tf.constant(ds.x_test[:5])
  grads = []
  for m in (model, original):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reduce_sum(m(x)[:, 3])
    grads.append(tape.gradient(y, x).numpy())
  np.testing.assert_allclose(grads[0], grads[1], atol=1e-5)
  assert np.abs(grads[1]).sum() > 0
  # Same directory: cached; new weights at the same path: a new train key.
  assert study.run(study.build(cfg), ["train"], cfg)["train"].uri == done["train"].uri
  _export(path, seed=7)
  assert study.build(cfg).nodes["train"].params["model_sha256"] != sha


def test_savedmodel_flag_errors(tmp_path):
  with pytest.raises(UserError, match="no SavedModel at .*saved_model.pb"):
    _config(str(tmp_path / "missing"), tmp_path, kind="savedmodel").check()
  with pytest.raises(UserError, match="give the file"):
    models.parse_spec("savedmodel:")
  path = str(tmp_path / "nologits")
  _export(path, outputs=("features",))
  with pytest.raises(UserError, match="returns features, no 'logits'; it must be a SavedModel"):
    _config(path, tmp_path / "runs", kind="savedmodel").check()
  path = str(tmp_path / "three")
  _export(path, classes=3, outputs=("logits", "features"))
  with pytest.raises(UserError, match="3 classes|logits have shape"):
    models.load_file(f"savedmodel:{path}", (8, 8, 1), 10)
  with pytest.raises(UserError, match="takes inputs"):
    models.load_file(f"savedmodel:{path}", (4, 4, 1), 3)
  # A layer the signature does not return fails before any work, naming its outputs.
  cfg = _config(path, tmp_path / "runs", kind="savedmodel")
  with pytest.raises(UserError, match="no layer 'hidden'.*features"):
    cfg.check()
