r"""Attack step: a Model and a Dataset artifact -> an AdversarialExamples artifact.

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

from absl import flags

from components import common
from tfhull import attacks
from tfhull.errors import UserError
from tfhull.study import config as study_config

NAME = "attack"
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
  flags.DEFINE_bool("attack_grow_budget", True, "Samples PGD does not flip at the largest eps "
                    "are retried at doubling eps up to 1 (L-inf) or sqrt(d) (L2) before the "
                    "bisection; the count still not flipped is reported.")
  flags.DEFINE_bool("attack_flip_points", True, "Closest flip points on each segment clean -> "
                    "adversarial.")
  flags.DEFINE_float("attack_flip_tol", 1e-3, "Top-two logit gap at which a flip point counts "
                     "as on the boundary.")
  flags.DEFINE_integer("cw_steps", 200, "CW-L2 Adam iterations per binary-search step.")
  flags.DEFINE_integer("cw_search_steps", 5, "CW-L2 binary-search steps over the constant.")
  flags.DEFINE_float("cw_learning_rate", 0.05, "CW-L2 Adam learning rate.")
  flags.DEFINE_float("cw_initial_const", 1.0, "CW-L2 initial constant.")
  flags.DEFINE_integer("spsa_samples", 128, "SPSA perturbations per gradient estimate.")


def _floats(v, name):
  try:
    return tuple(float(x) for x in v[name])
  except ValueError:
    raise UserError(f"--{name}={','.join(v[name])}: give numbers, e.g. 0.03,0.1") from None


def config(v) -> study_config.AttackStepConfig:
  """The attack step's config from flag values `v`."""
  return study_config.AttackStepConfig(size=v["attack_size"], attack=attacks.AttackConfig(
      attacks=tuple(v["attacks"]), norms=tuple(v["attack_norms"]),
      eps_inf=_floats(v, "attack_eps"), eps_l2=_floats(v, "attack_eps_l2"),
      targeted=v["attack_targeted"],
      iterative=attacks.IterativeConfig(steps=v["attack_steps"], step_size=v["attack_step_size"],
                                        rand_init=v["attack_rand_init"],
                                        spsa_samples=v["spsa_samples"]),
      cw_steps=v["cw_steps"], cw_search_steps=v["cw_search_steps"],
      cw_learning_rate=v["cw_learning_rate"], cw_initial_const=v["cw_initial_const"],
      minimal=v["attack_minimal"], bisection_steps=v["attack_bisection_steps"],
      grow_budget=v["attack_grow_budget"],
      flip_points=v["attack_flip_points"], flip_tol=v["attack_flip_tol"],
      batch_size=v["attack_batch_size"], seed=v["seed"]))


if __name__ == "__main__":
  common.main(NAME)
