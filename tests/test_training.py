"""Training regimes: interpolation, memorization of random labels, determinism, resume, replicas."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhull.data
from tfhull import models
from tfhull import training
from tfhull.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def digits():
  return tfhull.data.prepare("digits", train_size=400, test_size=200, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
  cfg = training.TrainConfig(epochs=200, batch_size=64, until_interpolation=True, seed=1)
  return training.train("mlp:width=128,depth=2", digits, cfg, verbose=0)


def test_small_mlp_interpolates_and_stops_there(trained):
  m = trained.metrics
  assert m["train_accuracy"] == 1.0 and m["interpolated"]
  assert m["interpolation_epoch"] == m["epochs_run"] < 200  # Stopped at interpolation.
  assert m["test_accuracy"] > 0.85
  assert m["params"] == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
  assert m["params_per_example"] == pytest.approx(m["params"] / 400)
  assert m["params_per_constraint"] == pytest.approx(m["params"] / 4000)
  # History: one entry per epoch for every logged quantity, test metrics included.
  lengths = {k: len(v) for k, v in trained.history.items()}
  assert set(lengths.values()) == {m["epochs_run"]}
  assert {"loss", "accuracy", "test_accuracy", "test_loss", "learning_rate"} <= set(lengths)
  assert trained.history["test_accuracy"][-1] == pytest.approx(m["test_accuracy"])


def test_random_labels_are_memorized_but_do_not_generalize():
  # Zhang et al. (2017): a wide net fits labels drawn at random; test accuracy drops to chance.
  ds = tfhull.data.prepare("digits", train_size=300, test_size=300, label_noise=1.0, seed=0)
  cfg = training.TrainConfig(epochs=400, batch_size=50, until_interpolation=True, seed=0)
  res = training.train("mlp:width=1024,depth=2", ds, cfg, verbose=0)
  assert res.metrics["train_accuracy"] == 1.0
  assert res.metrics["test_accuracy"] < 0.25      # Chance is 0.1.
  assert res.metrics["train_accuracy_clean_labels"] < 0.3


def test_saved_model_reloads_to_identical_predictions(trained, digits, tmp_path):
  path = str(tmp_path / models.MODEL_FILE)
  models.save(trained.model, path)
  again = models.load(path)
  np.testing.assert_array_equal(models.predict(again, digits.x_test),
                                models.predict(trained.model, digits.x_test))
  feats = models.predict(again, digits.x_test, layer="features")
  assert feats.shape == (200, 128) and np.all(feats >= 0)  # ReLU features.


def test_corrupt_or_missing_model_file_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    models.load(str(tmp_path / "none.keras"))
  bad = tmp_path / "bad.keras"
  bad.write_bytes(b"not a zip archive")
  with pytest.raises(UserError, match="corrupt or not a Keras model"):
    models.load(str(bad))


def test_predict_pads_to_static_batches_and_checks_shapes(trained, digits):
  full = models.predict(trained.model, digits.x_test, batch_size=512)
  small = models.predict(trained.model, digits.x_test, batch_size=7)  # 200 = 28 x 7 + 4.
  np.testing.assert_allclose(small, full, rtol=1e-5, atol=1e-5)
  with pytest.raises(UserError, match="do not fit model"):
    models.predict(trained.model, np.zeros((3, 4, 4, 1), np.float32))
  with pytest.raises(UserError, match="no layer 'nope'.*features"):
    models.predict(trained.model, digits.x_test, layer="nope")


def test_same_seed_same_weights_other_seed_other_weights(digits):
  tf.config.experimental.enable_op_determinism()
  cfg = training.TrainConfig(epochs=2, batch_size=64, augment="crop", seed=3)
  runs = [training.train("cnn:width=8,depth=2", digits, c, verbose=0)
          for c in (cfg, cfg, training.TrainConfig(epochs=2, batch_size=64, augment="crop", seed=4))]
  w = [np.concatenate([v.numpy().ravel() for v in r.model.weights]) for r in runs]
  np.testing.assert_array_equal(w[0], w[1])
  assert not np.allclose(w[0], w[2])


def test_input_pipeline_static_shapes_augmentation_and_labels():
  x = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)).astype(np.float32)
  y = np.arange(10) % 3
  ds = training.input_pipeline(x, y, 3, global_batch=4, augment="flip_crop", seed=0)
  assert ds.element_spec[0].shape == (4, 8, 8, 1)  # Static batch: drop_remainder.
  assert ds.element_spec[1].shape == (4, 3)
  batches = list(ds.take(5))
  for images, onehot in batches:
    assert np.all((images.numpy() >= 0) & (images.numpy() <= 1))
    np.testing.assert_array_equal(onehot.numpy().sum(1), 1)
  # Crop after 1-pixel padding: each augmented image is a shifted (and maybe flipped) original,
  # so its non-zero values are a subset of the original's values.
  plain = list(training.input_pipeline(x, y, 3, global_batch=10, augment="none", seed=0).take(1))
  assert set(np.round(plain[0][0].numpy().ravel(), 6)) == set(np.round(x.ravel(), 6))
  # The same seed gives the same stream.
  again = list(training.input_pipeline(x, y, 3, global_batch=4, augment="flip_crop",
                                       seed=0).take(5))
  for (a, _), (b, _) in zip(batches, again):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("schedule,end_ratio", [("constant", 1.0), ("cosine", 0.0),
                                                 ("step", 0.01)])
def test_learning_rate_schedules(schedule, end_ratio):
  cfg = training.TrainConfig(schedule=schedule, learning_rate=0.1, epochs=10)
  opt = training.make_optimizer(cfg, steps_per_epoch=10)  # 100 steps in all.
  at = {}
  for step in (0, 99):
    opt.iterations.assign(step)
    at[step] = float(keras.ops.convert_to_numpy(opt.learning_rate))
  assert at[0] == pytest.approx(0.1)
  assert at[99] == pytest.approx(0.1 * end_ratio, abs=1e-3)


def test_sgd_weight_decay_and_label_smoothing_are_applied(digits):
  cfg = training.TrainConfig(optimizer="sgd", learning_rate=0.05, weight_decay=1e-3,
                             label_smoothing=0.1, epochs=1, batch_size=100)
  opt = training.make_optimizer(cfg, 4)
  assert isinstance(opt, keras.optimizers.SGD) and opt.weight_decay == pytest.approx(1e-3)
  res = training.train("linear", digits, cfg, verbose=0)
  # With smoothing the loss has a floor: the entropy of the smoothed target.
  floor = -(0.91 * np.log(0.91) + 9 * 0.01 * np.log(0.01))
  assert res.metrics["train_loss"] > floor


@pytest.mark.parametrize("kwargs,spec,message", [
    (dict(optimizer="rmsprop"), "linear", "unknown optimizer"),
    (dict(schedule="poly"), "linear", "unknown lr schedule"),
    (dict(augment="mixup"), "linear", "unknown augmentation"),
    (dict(learning_rate=0.0), "linear", "learning_rate"),
    (dict(label_smoothing=1.0), "linear", "label_smoothing"),
    (dict(batch_size=100_000), "linear", "lower --batch_size"),
    ({}, "mlp:width=abc", "width must be an int"),
    ({}, "cnn", None),  # Fits: digits are (8, 8, 1) images.
])
def test_bad_training_input(digits, kwargs, spec, message):
  cfg = training.TrainConfig(**{"epochs": 1, "batch_size": 64, **kwargs})
  if message is None:
    training.train(spec, digits, cfg, verbose=0)
    return
  with pytest.raises(UserError, match=message):
    training.train(spec, digits, cfg, verbose=0)


def test_flat_inputs_need_a_flat_model():
  ds = tfhull.data.prepare("toy2d:moons", train_size=64, test_size=32, seed=0)
  with pytest.raises(UserError, match="needs an image input shape"):
    training.train("cnn", ds, training.TrainConfig(epochs=1, batch_size=32), verbose=0)


class _Interrupt(keras.callbacks.Callback):

  def __init__(self, at_epoch):
    super().__init__()
    self.at_epoch = at_epoch

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == self.at_epoch:
      raise KeyboardInterrupt


def test_interrupted_training_resumes_from_its_last_epoch(digits, tmp_path):
  work = str(tmp_path / "work")
  cfg = training.TrainConfig(epochs=6, batch_size=64, seed=0)
  with pytest.raises(KeyboardInterrupt):
    training.train("mlp:width=32,depth=1", digits, cfg, work_dir=work,
                   callbacks=[_Interrupt(4)], verbose=0)
  epochs = []
  counter = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs.append(e))
  resumed = training.train("mlp:width=32,depth=1", digits, cfg, work_dir=work,
                           callbacks=[counter], verbose=0)
  assert epochs == [4, 5]  # Restored after epoch 3, not restarted.
  # Epochs 0-3 come from the first run's log, 4-5 from the resumed one: six in all.
  assert len(resumed.history["loss"]) == 6
  assert resumed.metrics["epochs_run"] == 6


@pytest.mark.slow  # make test-all; keeps make test under 20 minutes on 2 cores.
def test_two_replica_mirrored_training():
  code = textwrap.dedent("""
      import json
      from tfhull import distribute
      distribute.split_cpu(2)
      import tensorflow as tf
      import tfhull.data
      from tfhull import training
      strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
      ds = tfhull.data.prepare("digits", train_size=400, test_size=200, seed=0)
      cfg = training.TrainConfig(epochs=60, batch_size=32, until_interpolation=True)
      res = training.train("mlp:width=128,depth=2", ds, cfg, strategy=strategy, verbose=0)
      print(json.dumps(res.metrics))
  """)
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  import json  # pylint: disable=g-import-not-at-top
  m = json.loads(out.stdout.strip().splitlines()[-1])
  assert m["replicas"] == 2 and m["global_batch_size"] == 64 and m["steps_per_epoch"] == 6
  assert m["train_accuracy"] > 0.95 and m["test_accuracy"] > 0.8


def test_mixed_precision_computes_in_bfloat16_and_restores_the_policy(digits):
  cfg = training.TrainConfig(epochs=15, batch_size=64, mixed_precision=True)
  res = training.train("mlp:width=32,depth=1", digits, cfg, verbose=0)
  dense = res.model.get_layer("features")
  assert dense.compute_dtype == "bfloat16" and dense.variable_dtype == "float32"
  assert keras.config.dtype_policy().name == "float32"  # Restored for what comes next.
  assert np.all(np.isfinite(models.predict(res.model, digits.x_test)))
  assert res.metrics["test_accuracy"] > 0.3


def test_init_scale_multiplies_the_initial_kernels(digits):
  base = training.train("linear", digits, training.TrainConfig(epochs=1, learning_rate=1e-9),
                        verbose=0)
  big = training.train("linear", digits, training.TrainConfig(epochs=1, learning_rate=1e-9,
                                                              init_scale=3.0), verbose=0)
  k0, k1 = (m.model.get_layer("logits").kernel.numpy() for m in (base, big))
  np.testing.assert_allclose(k1, 3.0 * k0, rtol=1e-4, atol=1e-7)
  with pytest.raises(UserError, match="init_scale"):
    training.TrainConfig(init_scale=0.0).check()


def test_input_pipeline_epochs_depend_only_on_seed_and_epoch():
  # What exact resume rests on: the stream started at epoch k is the uninterrupted stream's
  # continuation after k epochs (order and augmentation), and each epoch is a permutation.
  x = np.random.default_rng(0).uniform(size=(10, 8, 8, 1)).astype(np.float32)
  y = np.arange(10) % 3
  kw = dict(global_batch=3, augment="flip_crop", seed=5)  # 3 steps/epoch, 1 example left out.
  full = [b[0].numpy() for b in training.input_pipeline(x, y, 3, **kw).take(9)]
  later = [b[0].numpy() for b in training.input_pipeline(x, y, 3, start_epoch=2, **kw).take(3)]
  for a, b in zip(full[6:], later):
    np.testing.assert_array_equal(a, b)
  plain = training.input_pipeline(x, y, 3, global_batch=5, augment="none", seed=5)
  epochs = [np.concatenate([b[0].numpy() for b in plain.take(4)][i:i + 2]) for i in (0, 2)]
  for e in epochs:
    assert sorted(e.reshape(10, -1).sum(1).round(5)) == sorted(x.reshape(10, -1).sum(1).round(5))
  assert not np.array_equal(epochs[0], epochs[1])  # Reshuffled each epoch.
  other = [b[0].numpy() for b in training.input_pipeline(x, y, 3, **dict(kw, seed=6)).take(3)]
  assert not all(np.array_equal(a, b) for a, b in zip(full[:3], other))


def test_epoch_lines_count_as_console_output(digits, monkeypatch):
  """With Keras printing per-epoch lines (verbose), every epoch marks output for the console's
  heartbeat (`console.touch`); silent training (verbose=0) does not."""
  from tfhull import console  # pylint: disable=import-outside-toplevel
  touches = []
  monkeypatch.setattr(console, "touch", lambda: touches.append(1))
  cfg = training.TrainConfig(epochs=2, batch_size=200, seed=0)
  training.train("mlp:width=8,depth=1", digits, cfg, verbose=2)
  assert len(touches) >= 2
  touches.clear()
  training.train("mlp:width=8,depth=1", digits, cfg, verbose=0)
  assert not touches
