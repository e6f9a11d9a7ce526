r"""Benchmark: tfhull's batched, compiled attacks against plain per-batch cleverhans calls.

  python -m benchmarks.attacks             # readable table
  python -m benchmarks.attacks --json      # one JSON object on stdout
  python -m benchmarks.attacks --quick --json

On an MLP trained on scikit-learn digits until interpolation (`mlp:width=256,depth=2`), attacks
the 450 test images repeated to --examples:
  - PGD-20, L-inf eps 0.1, step 0.025, random start: `tfhull.attacks.run_batched` (one
    `tf.function` per static batch, with and without XLA) vs cleverhans'
    `projected_gradient_descent` called eagerly on each batch, the way its tutorials do;
  - CW-L2, 5 binary-search steps x 200 iterations: `tfhull.attacks.carlini_wagner_l2` vs
    cleverhans' `carlini_wagner_l2` on the same batch (which fails under Keras 3: its error is
    reported, not hidden).
Examples per second exclude compilation (one warm-up batch first, reported separately).
"""

import json
import os
import platform
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_bool("json", False, "Print one JSON object on stdout instead of a table.")
  flags.DEFINE_integer("examples", 1800, "Examples attacked per method.", lower_bound=1)
  flags.DEFINE_integer("batch_size", 256, "Batch size of every method.", lower_bound=1)
  flags.DEFINE_integer("cw_examples", 450, "Examples attacked by CW-L2.", lower_bound=1)
  flags.DEFINE_bool("quick", False, "Tiny smoke configuration (tests).")
  flags.DEFINE_integer("seed", 0, "Seed of the model and the random starts.")


def _model(seed: int):
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import training  # pylint: disable=import-outside-toplevel
  ds = tfhull.data.prepare("digits", seed=seed)
  res = training.train("mlp:width=256,depth=2", ds,
                       training.TrainConfig(epochs=200, until_interpolation=True, seed=seed),
                       verbose=0)
  return res.model, ds


def _rate(fn, n):
  start = time.time()
  out = fn()
  return out, n / (time.time() - start)


def run(examples: int, batch_size: int, cw_examples: int, seed: int) -> dict:
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks.carlini_wagner_l2 import carlini_wagner_l2 as ch_cw  # pylint: disable=import-outside-toplevel
  from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent  # pylint: disable=import-outside-toplevel
  from tfhull import attacks  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  total = time.time()
  model, ds = _model(seed)
  reps = -(-examples // len(ds.x_test))
  x = np.concatenate([ds.x_test] * reps)[:examples]
  y = np.concatenate([ds.y_test] * reps)[:examples]
  fn = lambda v: model(v, training=False)  # pylint: disable=unnecessary-lambda-assignment
  robust = lambda adv: float(np.mean(models.predict(model, adv).argmax(1) == y[:len(adv)]))  # pylint: disable=unnecessary-lambda-assignment
  cases = []

  # PGD-20.
  cfg = attacks.IterativeConfig(steps=20, step_size=0.25, rand_init=True)
  pgd = {"case": "pgd20_linf_eps0.1", "examples": examples, "batch_size": batch_size}
  for jit in (False, True):
    step = attacks.make_step("pgd", fn, "inf", cfg)
    tf.random.set_seed(seed)  # Before the warm-up: setting the seed makes tf.function retrace.
    t0 = time.time()
    attacks.run_batched(step, x[:batch_size], y[:batch_size], 0.1, batch_size=batch_size,
                        jit_compile=jit)
    warm = time.time() - t0
    adv, rate = _rate(lambda: attacks.run_batched(step, x, y, 0.1, batch_size=batch_size,  # pylint: disable=cell-var-from-loop
                                                  jit_compile=jit), examples)
    pgd["tfhull_xla" if jit else "tfhull"] = {
        "examples_per_s": rate, "warmup_s": warm, "robust_accuracy": robust(adv),
        "max_linf": float(np.abs(adv - x).max())}

  def cleverhans_pgd():
    out = []
    for i in range(0, examples, batch_size):
      out.append(projected_gradient_descent(
          fn, tf.constant(x[i:i + batch_size]), 0.1, 0.025, 20, np.inf, clip_min=0.0,
          clip_max=1.0, y=tf.constant(y[i:i + batch_size]), rand_init=True,
          sanity_checks=False).numpy())
    return np.concatenate(out)
  tf.random.set_seed(seed)
  t0 = time.time()
  projected_gradient_descent(fn, tf.constant(x[:batch_size]), 0.1, 0.025, 20, np.inf,
                             clip_min=0.0, clip_max=1.0, y=tf.constant(y[:batch_size]),
                             rand_init=True, sanity_checks=False)
  warm = time.time() - t0
  adv, rate = _rate(cleverhans_pgd, examples)
  pgd["cleverhans_per_batch"] = {"examples_per_s": rate, "warmup_s": warm,
                                 "robust_accuracy": robust(adv)}
  best = max(pgd["tfhull"]["examples_per_s"], pgd["tfhull_xla"]["examples_per_s"])
  pgd["speedup"] = best / pgd["cleverhans_per_batch"]["examples_per_s"]
  cases.append(pgd)

  # CW-L2, 5 x 200.
  xc, yc = x[:cw_examples], y[:cw_examples]
  cw = {"case": "cw_l2_5x200", "examples": cw_examples, "batch_size": batch_size}
  t0 = time.time()
  res = attacks.carlini_wagner_l2(fn, xc, yc, batch_size=batch_size, binary_search_steps=5,
                                  max_iterations=200, learning_rate=0.05)
  wall = time.time() - t0
  cw["tfhull"] = {"examples_per_s": cw_examples / wall, "wall_s_incl_compile": wall,
                  "success_rate": float(res.success.mean()),
                  "median_l2": float(np.median(res.l2[res.success])) if res.success.any()
                               else None}
  try:
    t0 = time.time()
    ref = ch_cw(fn, xc[:batch_size], y=yc[:batch_size], batch_size=batch_size,
                binary_search_steps=5, max_iterations=200, learning_rate=0.05,
                initial_const=1.0, clip_min=0.0, clip_max=1.0).numpy()
    n_ref = len(ref)
    cw["cleverhans_per_batch"] = {"examples_per_s": n_ref / (time.time() - t0),
                                  "robust_accuracy": robust(ref)}
    cw["speedup"] = cw["tfhull"]["examples_per_s"] / cw["cleverhans_per_batch"]["examples_per_s"]
  except Exception as e:  # pylint: disable=broad-except
    cw["cleverhans_per_batch"] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    cw["speedup"] = None
  cases.append(cw)
  return {
      "config": {"examples": examples, "batch_size": batch_size, "cw_examples": cw_examples,
                 "seed": seed, "model": "mlp:width=256,depth=2 (digits, until interpolation)"},
      "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                  "tensorflow": tf.__version__},
      "cases": cases,
      "total_wall_s": time.time() - total,
  }


def _table(report: dict) -> str:
  lines = [f"{'case':<20} {'method':<22} {'examples/s':>11} {'warm-up s':>10}  notes"]
  for case in report["cases"]:
    for method in ("tfhull", "tfhull_xla", "cleverhans_per_batch"):
      stats = case.get(method)
      if stats is None:
        continue
      rate = stats.get("examples_per_s")
      note = stats.get("error") or ", ".join(
          f"{k}={v:.3g}" for k, v in stats.items()
          if k not in ("examples_per_s", "warmup_s") and isinstance(v, float))
      rate_text = f"{rate:.0f}" if rate else "-"
      warm_text = f"{stats.get('warmup_s', 0.0):.2f}"
      lines.append(f"{case['case']:<20} {method:<22} {rate_text:>11} {warm_text:>10}  {note}")
    if case.get("speedup"):
      lines.append(f"{'':<20} speed-up vs cleverhans: {case['speedup']:.1f}x")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if FLAGS.quick:
    report = run(examples=128, batch_size=64, cw_examples=32, seed=FLAGS.seed)
  else:
    report = run(FLAGS.examples, FLAGS.batch_size, FLAGS.cw_examples, FLAGS.seed)
  if FLAGS.json:
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
  else:
    print(_table(report))


if __name__ == "__main__":
  define_flags()
  app.run(main)
