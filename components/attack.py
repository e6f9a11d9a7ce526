"""Attack step: a Model and a Dataset artifact -> an AdversarialExamples artifact.

  python -m components.attack --attacks=fgm,pgd,cw_l2 --attack_norms=inf,2 \
      --attack_eps=0.03,0.1,0.2 --attack_eps_l2=0.5,1,2 --attack_steps=20

Runs every attack x norm x eps on the test split (or `--attack_size` seeded samples of it), the
per-sample minimal PGD perturbation by bisection over eps, and the closest flip point on the
segment from each clean sample to each of its adversarial examples. Writes `adversarial.npz` (one
row per attack, norm, eps and sample: source index, labels, perturbation norms, success, the
adversarial example and its flip point) and the metrics (clean and robust accuracy per attack and
eps, point-wise worst case over attacks, success rates, minimal perturbations, sanity warnings)
in `metadata.json`.
"""

import dataclasses
import sys

from absl import flags
import numpy as np

import tfhull.data
from components import common
from tfhull import attacks
from tfhull import io
from tfhull import models
from tfhull.errors import UserError

NAME = "attack"
VERSION = "1"
OUTPUT_TYPE = "AdversarialExamples"
INPUTS = ("data", "train")

FLAGS = flags.FLAGS


def define_flags() -> None:
  if "attacks" in FLAGS:
    return
  flags.DEFINE_list("attacks", ["fgm", "pgd", "cw_l2"],
                    f"Attacks, any of {', '.join(attacks.ATTACKS)}.")
  flags.DEFINE_list("attack_norms", ["inf", "2"], "Norms: inf and/or 2.")
  flags.DEFINE_list("attack_eps", ["0.03", "0.1", "0.2"], "L-inf radii, in (0, 1].")
  flags.DEFINE_list("attack_eps_l2", ["0.5", "1", "2"], "L2 radii.")
  flags.DEFINE_integer("attack_steps", 20, "Iterations of PGD, BIM, MIM and SPSA.")
  flags.DEFINE_float("attack_step_size", 0.25, "Step size of the iterative attacks, as a "
                     "fraction of eps.")
  flags.DEFINE_bool("attack_rand_init", True, "PGD starts at a random point of the eps ball.")
  flags.DEFINE_bool("attack_targeted", False, "Targeted attacks towards a seeded random other "
                    "class (no minimal-perturbation search then).")
  flags.DEFINE_integer("attack_size", 0, "Test samples to attack, seeded (0 = all).",
                       lower_bound=0)
  flags.DEFINE_integer("attack_batch_size", 128, "Examples per replica per attack step.")
  flags.DEFINE_bool("attack_minimal", True, "Per-sample smallest flipping eps by bisection.")
  flags.DEFINE_integer("attack_bisection_steps", 10, "Bisection steps (tolerance "
                       "eps_max / 2**steps).")
  flags.DEFINE_bool("attack_flip_points", True, "Closest flip points on each segment clean -> "
                    "adversarial.")
  flags.DEFINE_float("attack_flip_tol", 1e-3, "Top-two logit gap at which a flip point counts "
                     "as on the boundary.")
  flags.DEFINE_integer("cw_steps", 200, "CW-L2 Adam iterations per binary-search step.")
  flags.DEFINE_integer("cw_search_steps", 5, "CW-L2 binary-search steps over the constant.")
  flags.DEFINE_float("cw_learning_rate", 0.05, "CW-L2 Adam learning rate.")
  flags.DEFINE_float("cw_initial_const", 1.0, "CW-L2 initial constant.")
  flags.DEFINE_integer("spsa_samples", 128, "SPSA perturbations per gradient estimate.")


def _floats(name):
  try:
    return tuple(float(v) for v in FLAGS[name].value)
  except ValueError:
    raise UserError(f"--{name}={','.join(FLAGS[name].value)}: give numbers, "
                    "e.g. 0.03,0.1") from None


def config() -> attacks.AttackConfig:
  return attacks.AttackConfig(
      attacks=tuple(FLAGS.attacks), norms=tuple(FLAGS.attack_norms),
      eps_inf=_floats("attack_eps"), eps_l2=_floats("attack_eps_l2"),
      targeted=FLAGS.attack_targeted,
      iterative=attacks.IterativeConfig(steps=FLAGS.attack_steps,
                                        step_size=FLAGS.attack_step_size,
                                        rand_init=FLAGS.attack_rand_init,
                                        spsa_samples=FLAGS.spsa_samples),
      cw_steps=FLAGS.cw_steps, cw_search_steps=FLAGS.cw_search_steps,
      cw_learning_rate=FLAGS.cw_learning_rate, cw_initial_const=FLAGS.cw_initial_const,
      minimal=FLAGS.attack_minimal, bisection_steps=FLAGS.attack_bisection_steps,
      flip_points=FLAGS.attack_flip_points, flip_tol=FLAGS.attack_flip_tol,
      batch_size=FLAGS.attack_batch_size, seed=common.SEED.value)


def params() -> dict:
  return {"size": FLAGS.attack_size, **dataclasses.asdict(config())}


def check_flags() -> None:
  config().check(input_dim=10**9)  # The L2 bound needs the data; checked again in run().


def run(inputs: dict):
  given = common.override(NAME, OUTPUT_TYPE)
  if given is not None:
    return given
  check_flags()
  cfg = config()

  def build(out_dir: str) -> dict:
    ds = tfhull.data.load(inputs["data"].uri)
    cfg.check(ds.input_dim)
    strategy = common.strategy()
    model = models.load_artifact(inputs["train"], strategy=strategy)
    idx = np.arange(len(ds.x_test))
    if FLAGS.attack_size and FLAGS.attack_size < len(idx):
      rng = np.random.default_rng(common.SEED.value)
      idx = np.sort(rng.choice(idx, FLAGS.attack_size, replace=False))
    result = attacks.run_suite(model, ds.x_test[idx], ds.y_test[idx], cfg, strategy=strategy,
                               source_index=idx, progress=True)
    io.save_npz(io.join(out_dir, "adversarial.npz"), result.records)
    worst = result.metrics["worst_case_robust_accuracy"]
    minimal = result.metrics["minimal_perturbation"]
    return {**result.metrics,
            "worst_case": {f"L{n}": ", ".join(f"{e}: {a:.3f}" for e, a in d.items())
                           for n, d in worst.items()},
            "median_minimal_l2": {k: v["l2"]["median"] for k, v in minimal.items()},
            "headline": ["samples", "clean_accuracy", "worst_case", "median_minimal_l2",
                         "warnings"]}

  return common.run_step(sys.modules[__name__], params(), inputs, build)


if __name__ == "__main__":
  common.main(NAME)
