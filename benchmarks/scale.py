r"""Benchmark: every pipeline step at CIFAR-10 scale on this CPU, and the full config projected.

  python -m benchmarks.scale --json          # one JSON object on stdout
  python -m benchmarks.scale --quick --json  # seconds-long smoke run (tests)

Data: CIFAR-10-shaped synthetic images, 50,000 train + 10,000 test x 32x32x3 uint8, 10 classes
(a class-dependent colour and stripe pattern plus uniform noise, so a model can learn it). Each
step runs at reduced size (a few training steps, a few hundred feature rows, a few attacked
examples, a few hull queries against all 50,000 training points) and reports its wall and CPU
seconds (`time.process_time`, all threads), the resident memory after it and the process's
peak (`resource.getrusage`, max RSS). The projection multiplies each step's measured CPU
rate (after compilation: first calls are timed separately as `compile`) by the sizes of
configs/cifar10_resnet20.flags: 200 epochs of 390 steps of 128, features of 60,000 images,
1,000 attacked examples (FGM and PGD-20 at 4 eps in 2 norms, CW-L2 5 x 200), hull distances of
the 2,000 test points and 16 x 1,000 adversarial points in each of 3 spaces (pixel 3072-d, Haar
500-d, features 64-d). Not projected: the minimal-eps bisection, flip points and per-class
hulls (they scale like the attack and hull rows shown). Hull cost per query depends on where the
queries lie (passes to converge): synthetic test points stand in for all query kinds.
"""

import json
import os
import platform
import resource
import sys
import time

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS
GB = 1 << 30
RAM_LIMIT = 24 * GB  # This machine's memory: nothing may exceed it.

# configs/cifar10_resnet20.flags, the sizes the projection scales to.
FULL = dict(train=50_000, test=10_000, epochs=200, batch=128, feature_rows=60_000,
            attack_size=1000, eps_per_norm=4, norms=2, cw_iterations=5 * 200,
            hull_queries=2000 + 16 * 1000, spaces=3)


def define_flags() -> None:
  flags.DEFINE_bool("json", False, "Print one JSON object on stdout instead of a table.")
  flags.DEFINE_bool("quick", False, "Tiny smoke configuration (tests): 2,000 images, ResNet-8; "
                    "its projection uses the tiny model's rates, so it means nothing.")
  flags.DEFINE_integer("seed", 0, "Seed of the data and the model.")


def synthetic_cifar(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(n, 32, 32, 3) uint8 images and (n,) int32 labels in 0..9: per class a colour and a
  stripe frequency, plus uniform noise."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 10, n).astype(np.int32)
  colour = np.random.default_rng(1234).integers(40, 216, (10, 3))
  xs = np.arange(32)
  x = np.empty((n, 32, 32, 3), np.uint8)
  for s in range(0, n, 5000):  # Bounded temporaries.
    yb = y[s:s + 5000]
    stripes = np.sin(xs[None, None, :] * (yb[:, None, None] + 1) * 0.35) * 40  # (b, 1, 32)
    img = colour[yb][:, None, None, :] + stripes[..., None] + rng.integers(-48, 49, (len(yb), 32, 32, 3))
    x[s:s + 5000] = np.clip(img, 0, 255).astype(np.uint8)
  return x, y


def _rss() -> float:
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GB


def _peak() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB  # KiB on Linux.


class _Steps:
  """Times steps: wall and CPU seconds, resident and peak memory (GiB) after each."""

  def __init__(self):
    self.rows = {}

  def time(self, name, fn, **extra):
    w, c = time.time(), time.process_time()
    out = fn()
    row = dict(wall_s=time.time() - w, cpu_s=time.process_time() - c, rss_gb=_rss(),
               peak_rss_gb=_peak(), **extra)
    self.rows[name] = row
    if row["peak_rss_gb"] * GB > RAM_LIMIT:
      raise MemoryError(f"{name}: peak {row['peak_rss_gb']:.1f} GiB exceeds the 24 GiB machine")
    return out


def project(rows: dict, cw_iterations: int) -> dict:
  """CPU seconds of configs/cifar10_resnet20.flags (`FULL`) from the measured `rows` (per step:
  cpu_s and the rows it covered; train: step_cpu_s); 'total' sums the steps."""
  per_epoch = FULL["train"] // FULL["batch"]
  per_row = lambda name: rows[name]["cpu_s"] / rows[name]["rows"]
  out = {
      # Training steps plus the monitor's test-set evaluation each epoch (a feature-like pass).
      "train": FULL["epochs"] * (rows["train"]["step_cpu_s"] * per_epoch
                                 + per_row("features") * FULL["test"]),
      "features": per_row("features") * FULL["feature_rows"],
      "attacks": FULL["attack_size"] * (
          FULL["eps_per_norm"] * FULL["norms"] * (per_row("fgm") + per_row("pgd"))
          + per_row("cw_l2") * FULL["cw_iterations"] / cw_iterations),
      "haar": per_row("haar") * (FULL["train"] + FULL["test"]),
      "hull": sum(per_row(f"hull_{s}") for s in ("pixel", "haar", "features"))
              * FULL["hull_queries"],
  }
  out["total"] = sum(out.values())
  return out


def run(quick: bool, seed: int) -> dict:
  import keras  # pylint: disable=import-outside-toplevel
  from tfhull import attacks, models, training  # pylint: disable=import-outside-toplevel
  from tfhull.attacks import gradient  # pylint: disable=import-outside-toplevel
  from tfhull.data.dataset import Dataset  # pylint: disable=import-outside-toplevel
  from tfhull.hull import project_onto_hull  # pylint: disable=import-outside-toplevel
  from tfhull.representations import haar  # pylint: disable=import-outside-toplevel

  size = dict(train=2000, test=400, model="resnet:depth=8", train_steps=4, feature_rows=256,
              attack=8, cw_iterations=10, hull_queries=4) if quick else dict(
                  train=50_000, test=10_000, model="resnet:depth=20", train_steps=20,
                  feature_rows=2048, attack=64, cw_iterations=40, hull_queries=16)
  steps = _Steps()
  start = time.time()

  def data():
    xtr, ytr = synthetic_cifar(size["train"], seed)
    xte, yte = synthetic_cifar(size["test"], seed + 1)
    return Dataset(x_train=xtr.astype(np.float32) / 255, y_train=ytr,
                   x_test=xte.astype(np.float32) / 255, y_test=yte,
                   class_names=tuple(str(c) for c in range(10)), source="synthetic_cifar",
                   train_index=np.arange(size["train"]), test_index=np.arange(size["test"]))
  ds = steps.time("data", data, images=size["train"] + size["test"])

  # Training: the full 50,000-image pipeline, 2 epochs of train_steps steps on a subset of
  # train_steps x 128 rows (the second epoch, compiled, gives the per-step rate).
  batch, n_sub = 128, size["train_steps"] * 128
  clock = {"wall": 0.0, "cpu": 0.0, "steps": 0}

  class _StepClock(keras.callbacks.Callback):  # Second epoch only: compiled steps.
    def on_train_batch_begin(self, batch, logs=None):
      self.t = (time.time(), time.process_time())

    def on_train_batch_end(self, batch, logs=None):
      if self.epoch == 1:
        clock["wall"] += time.time() - self.t[0]
        clock["cpu"] += time.process_time() - self.t[1]
        clock["steps"] += 1

    def on_epoch_begin(self, epoch, logs=None):
      self.epoch = epoch
  # The per-epoch test evaluation is projected from the feature rate (below), so the subset's
  # test split is small.
  sub = ds.replace(x_train=ds.x_train[:n_sub], y_train=ds.y_train[:n_sub],
                   train_index=ds.train_index[:n_sub], x_test=ds.x_test[:batch],
                   y_test=ds.y_test[:batch], test_index=ds.test_index[:batch])
  model = steps.time("train", lambda: training.train(
      size["model"], sub, training.TrainConfig(optimizer="sgd", learning_rate=0.1, epochs=2,
                                               batch_size=batch, augment="flip_crop", seed=seed),
      callbacks=[_StepClock()], verbose=0).model, steps=2 * size["train_steps"])
  steps.rows["train"].update(step_wall_s=clock["wall"] / clock["steps"],
                             step_cpu_s=clock["cpu"] / clock["steps"])

  rows = size["feature_rows"]
  steps.time("features_compile", lambda: models.predict(model, ds.x_test[:512], layer="features",
                                                        batch_size=512))
  feats = steps.time("features", lambda: models.predict(model, ds.x_train[:rows],
                                                        layer="features", batch_size=512),
                     rows=rows)

  k, x, y = size["attack"], ds.x_test[:size["attack"]], ds.y_test[:size["attack"]]
  cfg = gradient.IterativeConfig(steps=20)
  for name in ("fgm", "pgd"):
    step = gradient.make_step(name, lambda v: model(v, training=False), "inf", cfg)
    steps.time(f"{name}_compile", lambda: attacks.run_batched(step, x, y, 8 / 255,
                                                              batch_size=k))
    steps.time(name, lambda: attacks.run_batched(step, x, y, 8 / 255, batch_size=k), rows=k)
  steps.time("cw_l2", lambda: attacks.carlini_wagner_l2(
      model, x, y, batch_size=k, binary_search_steps=1, max_iterations=size["cw_iterations"],
      abort_early=False), rows=k, iterations=size["cw_iterations"])

  q = size["hull_queries"]
  train_flat = ds.x_train.reshape(len(ds.x_train), -1)
  test_flat = ds.x_test[:q].reshape(q, -1)
  spaces = {"pixel": (train_flat, test_flat)}
  h_train, h_test, _ = steps.time("haar", lambda: haar.haar_features(
      ds.x_train, ds.x_test[:q], level=2, top_k=500), rows=size["train"] + q)
  spaces["haar"] = (h_train, h_test)
  feat_train = steps.time("features_train_all", lambda: models.predict(
      model, ds.x_train, layer="features", batch_size=512), rows=size["train"])
  spaces["features"] = (feat_train, feats[:q])
  hull = {}
  for name, (points, queries) in spaces.items():
    h = max(1, q // 2)  # Two solves of the same shapes: the first compiles, the second is timed.
    steps.time(f"hull_{name}_compile", lambda p=points, qq=queries: project_onto_hull(
        p, qq[:h], batch_size=h, progress=False))
    res = steps.time(f"hull_{name}", lambda p=points, qq=queries: project_onto_hull(
        p, qq[h:2 * h], batch_size=h, progress=False), rows=h, points=len(points),
                     dim=int(points.shape[1]))
    hull[name] = dict(mean_passes=float(res.passes.mean()), outside=int(res.outside.sum()),
                      converged=int(res.converged.sum()))
  projected = project(steps.rows, size["cw_iterations"])
  return {
      "config": {**size, "quick": quick, "seed": seed, "full": FULL},
      "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                  "python": sys.version.split()[0]},
      "steps": steps.rows, "hull": hull,
      "projected_full_cpu_s": projected,
      "projected_full_cpu_h": {key: v / 3600 for key, v in projected.items()},
      "peak_rss_gb": _peak(), "ram_limit_gb": RAM_LIMIT / GB,
      "total_wall_s": time.time() - start,
  }


def main(argv):
  del argv
  report = run(FLAGS.quick, FLAGS.seed)
  if FLAGS.json:
    print(json.dumps(report, indent=1))
    return
  print(f"{'step':22s} {'wall s':>9s} {'cpu s':>9s} {'rss GiB':>8s} {'peak GiB':>8s}")
  for name, row in report["steps"].items():
    print(f"{name:22s} {row['wall_s']:9.2f} {row['cpu_s']:9.2f} {row['rss_gb']:8.2f} "
          f"{row['peak_rss_gb']:8.2f}")
  print("projected CPU hours for configs/cifar10_resnet20.flags:")
  for name, hours in report["projected_full_cpu_h"].items():
    print(f"  {name:10s} {hours:10.1f}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
