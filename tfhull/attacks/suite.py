"""The attack study: every attack x norm x eps on a set of samples, minimal perturbations, flip
points, and the metrics peer toolkits report.

  result = run_suite(model, x, y, AttackConfig(attacks=("fgm", "pgd", "cw_l2"), norms=("inf", "2")))
  result.records["x_adv"], result.metrics["robust_accuracy"]["pgd"]["inf"]["0.1"]

Records: one row per (attack, norm, eps, sample). CW-L2 has no eps (it minimizes the distortion;
its rows carry eps = inf) and counts as robust at L2 radius eps when it needs more than eps. The
minimal-perturbation search adds rows with attack `min_pgd` (eps = the per-sample minimum).
"""

import dataclasses
import math
import time
from typing import Optional, Sequence

from absl import logging
import numpy as np

from tfhull import models
from tfhull.attacks import cw
from tfhull.attacks import gradient
from tfhull.attacks import minimal
from tfhull.errors import UserError

ATTACKS = tuple(gradient.NORMS)


@dataclasses.dataclass(frozen=True)
class AttackConfig:
  """What to run. eps_inf / eps_l2 are the radius grids for L-inf and L2 (inputs in [0, 1])."""
  attacks: Sequence[str] = ("fgm", "pgd")
  norms: Sequence[str] = ("inf",)
  eps_inf: Sequence[float] = (0.03, 0.1, 0.2)
  eps_l2: Sequence[float] = (0.5, 1.0, 2.0)
  targeted: bool = False
  iterative: gradient.IterativeConfig = gradient.IterativeConfig()
  cw_steps: int = 200             # Adam iterations per binary-search step.
  cw_search_steps: int = 5
  cw_learning_rate: float = 0.05
  cw_initial_const: float = 1.0
  minimal: bool = True            # bisection over eps with PGD, per norm.
  bisection_steps: int = 10
  grow_budget: bool = True        # samples not flipped at the grid's largest eps are retried at
                                  # doubling eps up to the cap (L-inf: 1; L2: sqrt(d)).
  flip_points: bool = True
  flip_tol: float = 1e-3
  batch_size: int = 128           # per replica.
  seed: int = 0

  def grid(self, norm: str) -> tuple:
    return tuple(self.eps_inf if norm == "inf" else self.eps_l2)

  def check(self, input_dim: Optional[int] = None) -> None:
    """UserError for unknown attacks or norms, eps outside the valid range (the L2 bound needs
    `input_dim`; None skips it), bad sizes, non-finite or non-positive step settings."""
    for flag, value in (("attack_step_size", self.iterative.step_size),
                        ("cw_learning_rate", self.cw_learning_rate),
                        ("cw_initial_const", self.cw_initial_const),
                        ("attack_flip_tol", self.flip_tol)):
      if not (math.isfinite(value) and value > 0):
        raise UserError(f"--{flag}={value} must be a positive number")
    for flag, value in (("cw_steps", self.cw_steps), ("cw_search_steps", self.cw_search_steps),
                        ("spsa_samples", self.iterative.spsa_samples)):
      if value < 1:
        raise UserError(f"--{flag}={value} must be >= 1")
    for a in self.attacks:
      if a not in ATTACKS:
        raise UserError(f"unknown attack {a!r}; use any of {', '.join(ATTACKS)}")
    for n in self.norms:
      if n not in ("inf", "2"):
        raise UserError(f"unknown norm {n!r} in --attack_norms; use inf and/or 2")
    if not self.attacks or not self.norms:
      raise UserError("--attacks and --attack_norms must each name at least one")
    if not any(n in gradient.NORMS[a] for a in self.attacks for n in self.norms):
      raise UserError(f"no attack in {list(self.attacks)} supports the norms "
                      f"{list(self.norms)}; cw_l2 is L2 only, spsa L-inf only")
    for e in self.eps_inf:
      if not 0 < e <= 1:  # Also false for NaN.
        raise UserError(f"--attack_eps={e}: L-inf eps must be in (0, 1] for images in [0, 1]")
    max_l2 = math.sqrt(input_dim) if input_dim else math.inf
    for e in self.eps_l2:
      if not 0 < e <= max_l2:
        bound = (f"(0, {max_l2:.3g}] (sqrt of the input dimension {input_dim})" if input_dim
                 else "(0, inf)")
        raise UserError(f"--attack_eps_l2={e}: L2 eps must be a number in {bound} for images "
                        "in [0, 1]")
    if self.batch_size < 1 or self.bisection_steps < 1 or self.iterative.steps < 1:
      raise UserError("--attack_batch_size, --attack_steps and --attack_bisection_steps must be "
                      ">= 1")
    if not 0 < self.iterative.step_size <= 1:
      raise UserError(f"--attack_step_size={self.iterative.step_size} must be in (0, 1] "
                      "(a fraction of eps)")


@dataclasses.dataclass
class SuiteResult:
  """Every record (numpy arrays with a leading record axis) and the JSON-ready metrics."""
  records: dict
  metrics: dict


def _norms(adv: np.ndarray, x: np.ndarray):
  d = (adv.astype(np.float64) - x.astype(np.float64)).reshape(len(x), -1)
  return np.linalg.norm(d, axis=1).astype(np.float32), np.abs(d).max(1).astype(np.float32)


def _targets(y: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
  """A seeded random class other than y for each example."""
  shift = np.random.default_rng(seed).integers(1, num_classes, size=len(y))
  return ((y + shift) % num_classes).astype(np.int32)


def run_suite(model, x: np.ndarray, y: np.ndarray, config: AttackConfig, *, strategy=None,
              source_index: Optional[np.ndarray] = None, progress: bool = True) -> SuiteResult:
  """Runs the configured attacks on (x, y); x (n, ...) in [0, 1], y (n,) true labels."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.int32)
  config.check(int(np.prod(x.shape[1:])))
  if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
    raise UserError("attack inputs must be finite and in [0, 1]; check the dataset artifact")
  n = len(x)
  source_index = np.arange(n) if source_index is None else np.asarray(source_index)
  tf.random.set_seed(config.seed)
  kw = dict(batch_size=config.batch_size, strategy=strategy)
  clean_logits = models.predict(model, x, **kw)
  num_classes = clean_logits.shape[1]
  clean_pred = clean_logits.argmax(1)
  correct = clean_pred == y
  labels = _targets(y, num_classes, config.seed) if config.targeted else y
  model_fn = lambda v: model(v, training=False)  # pylint: disable=unnecessary-lambda-assignment
  rows, timings = [], {}

  def add(attack, norm, eps, adv):
    adv_pred = models.predict(model, adv, **kw).argmax(1)
    l2, linf = _norms(adv, x)
    success = adv_pred == labels if config.targeted else adv_pred != y
    rows.append(dict(attack=np.full(n, attack), norm=np.full(n, norm),
                     eps=np.broadcast_to(np.float32(eps), (n,)).astype(np.float32),
                     source_index=source_index, label=y, clean_label=clean_pred,
                     target=labels, adv_label=adv_pred, l2=l2, linf=linf, success=success,
                     x_adv=adv))

  for attack in config.attacks:
    start = time.time()
    for norm in (n_ for n_ in config.norms if n_ in gradient.NORMS[attack]):
      if attack == "cw_l2":
        res = cw.carlini_wagner_l2(
            model_fn, x, labels, targeted=config.targeted, batch_size=config.batch_size,
            binary_search_steps=config.cw_search_steps, max_iterations=config.cw_steps,
            learning_rate=config.cw_learning_rate, initial_const=config.cw_initial_const,
            progress=progress, strategy=strategy)
        add("cw_l2", "2", np.inf, res.x_adv)
        continue
      step = gradient.make_step(attack, model_fn, norm,
                                dataclasses.replace(config.iterative, seed=config.seed),
                                targeted=config.targeted)
      bs = 1 if attack == "spsa" else config.batch_size
      for eps in config.grid(norm):
        adv = gradient.run_batched(step, x, labels, eps, batch_size=bs, strategy=strategy,
                                   progress=f"{attack} {norm} eps={eps:g}" if progress else None)
        add(attack, norm, eps, adv)
        logging.info("attack %s (L%s, eps=%g): robust accuracy %.4f", attack, norm, eps,
                     float(np.mean(correct & ~rows[-1]["success"])))
    timings[attack] = round(time.time() - start, 3)

  minimal_stats = {}
  if config.minimal and not config.targeted:
    dim = int(np.prod(x.shape[1:]))
    for norm in config.norms:
      start = time.time()
      eps_max = max(config.grid(norm))
      cap = minimal.eps_cap(norm, dim)
      m = minimal.minimal_eps(model, x, y, norm=norm, eps_max=eps_max,
                              steps=config.bisection_steps, cfg=config.iterative,
                              progress=progress, cap=cap if config.grow_budget else None, **kw)
      add("min_pgd", norm, 0.0, m.x_adv)
      rows[-1]["eps"] = m.eps
      rows[-1]["success"] = m.found & correct
      minimal_stats[norm] = {
          "not_found": int(np.sum(correct & ~m.found)), "correct": int(correct.sum()),
          "eps_max": float(eps_max), "eps_tried": m.eps_tried,
          "cap": cap if config.grow_budget else None, "tolerance": m.tol,
          "grown": int(np.sum(correct & m.found & (m.eps > eps_max)))}
      timings[f"min_pgd_{norm}"] = round(time.time() - start, 3)

  records = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
  if config.flip_points:
    start = time.time()
    flips = minimal.flip_points(model, np.concatenate([x] * len(rows)), records["x_adv"],
                                tol=config.flip_tol, batch_size=4 * config.batch_size,
                                strategy=strategy)
    ok = flips.found & records["success"]
    records.update(flip_point=flips.point, flip_t=flips.t, flip_classes=flips.classes,
                   flip_gap=flips.gap, flip_distance=flips.distance, flip_found=ok)
    timings["flip_points"] = round(time.time() - start, 3)
  metrics = summarize(records, correct, config, model=model, x=x, y=y)
  if minimal_stats:
    metrics["minimal_search"] = minimal_stats
    metrics["minimal_not_found"] = sum(v["not_found"] for v in minimal_stats.values())
    for norm, v in minimal_stats.items():
      if v["not_found"]:
        w = (f"minimal perturbation L{norm}: PGD flipped no label up to eps={v['eps_tried']:g} "
             f"for {v['not_found']} of {v['correct']} correctly classified samples; they are "
             "left out of the minimal-perturbation quantiles (biased low)")
        metrics["warnings"].append(w)
        logging.warning("attack sanity check: %s", w)
  metrics["seconds"] = timings
  return SuiteResult(records=records, metrics=metrics)


def _quantiles(a) -> dict:
  a = np.asarray(a, np.float64)
  a = a[np.isfinite(a)]
  if not a.size:
    return {"median": None, "q25": None, "q75": None}
  return {"median": float(np.median(a)), "q25": float(np.percentile(a, 25)),
          "q75": float(np.percentile(a, 75))}


def summarize(records: dict, correct: np.ndarray, config: AttackConfig, *, model=None, x=None,
              y=None) -> dict:
  """Clean and robust accuracy per attack/norm/eps, point-wise worst case over attacks, success
  rates among initially correct samples, minimal perturbations, flip points, sanity warnings."""
  n = len(correct)
  robust, success_rate = {}, {}
  worst = {norm: {f"{e:g}": correct.copy() for e in config.grid(norm)} for norm in config.norms}
  attacks = records["attack"].reshape(-1, n)[:, 0]
  norms = records["norm"].reshape(-1, n)[:, 0]
  succ = records["success"].reshape(-1, n)
  eps = records["eps"].reshape(-1, n)
  l2 = records["l2"].reshape(-1, n)
  for i, (attack, norm) in enumerate(zip(attacks, norms)):
    if attack == "min_pgd":
      continue
    grid = config.grid(norm) if attack != "cw_l2" else config.eps_l2
    for e in grid:
      if attack == "cw_l2":
        broken = succ[i] & (l2[i] <= e + 1e-6)
      elif not np.isclose(eps[i, 0], e):
        continue
      else:
        broken = succ[i]
      key = f"{e:g}"
      robust.setdefault(attack, {}).setdefault(norm, {})[key] = float(np.mean(correct & ~broken))
      success_rate.setdefault(attack, {}).setdefault(norm, {})[key] = (
          float(np.mean(broken[correct])) if correct.any() else 0.0)
      if norm in worst and key in worst[norm]:
        worst[norm][key] &= ~broken
  metrics = {
      "samples": n,
      "clean_accuracy": float(np.mean(correct)),
      "robust_accuracy": robust,
      "success_rate": success_rate,
      "worst_case_robust_accuracy": {nm: {k: float(np.mean(v)) for k, v in d.items()}
                                     for nm, d in worst.items()},
      "minimal_perturbation": {},
  }
  for i, (attack, norm) in enumerate(zip(attacks, norms)):
    if attack in ("min_pgd", "cw_l2"):
      ok = succ[i] & correct
      metrics["minimal_perturbation"][f"{attack}/{norm}"] = {
          "l2": _quantiles(l2[i][ok]),
          "linf": _quantiles(records["linf"].reshape(-1, n)[i][ok]),
          "found_fraction": float(np.mean(ok[correct])) if correct.any() else 0.0}
  if "flip_found" in records:
    found = records["flip_found"]
    metrics["flip_points"] = {
        "found": int(found.sum()),
        "max_gap": float(np.nanmax(records["flip_gap"][found])) if found.any() else None,
        "median_distance": float(np.median(records["flip_distance"][found])) if found.any()
                           else None}
  metrics["warnings"] = _sanity(metrics, config, model, x, y)
  for w in metrics["warnings"]:
    logging.warning("attack sanity check: %s", w)
  return metrics


def _sanity(metrics: dict, config: AttackConfig, model, x, y) -> list:
  """Gradient-masking and consistency checks after AutoAttack's (logits, zero gradients,
  gradient-free beating gradient-based, accuracy not decreasing in eps)."""
  warnings = []
  if model is not None and x is not None:
    frac = zero_gradient_fraction(model, x, y, batch_size=config.batch_size)
    metrics["zero_gradient_fraction"] = frac
    if frac > 0.01:
      warnings.append(f"{frac:.1%} of the samples have an all-zero input gradient (gradient "
                      "masking?): gradient attacks underestimate the vulnerability")
  robust = metrics["robust_accuracy"]
  for eps, acc in robust.get("spsa", {}).get("inf", {}).items():
    pgd_acc = robust.get("pgd", {}).get("inf", {}).get(eps)
    if pgd_acc is not None and acc < pgd_acc - 0.02:
      warnings.append(f"SPSA (gradient-free) beats PGD at L-inf eps={eps} ({acc:.3f} < "
                      f"{pgd_acc:.3f}): gradients may be masked; raise --attack_steps")
  for attack, by_norm in robust.items():
    for norm, by_eps in by_norm.items():
      accs = [by_eps[k] for k in sorted(by_eps, key=float)]
      if any(b > a + 1e-9 for a, b in zip(accs, accs[1:])):
        warnings.append(f"{attack} L{norm}: robust accuracy increases with eps ({accs}); the "
                        "attack is too weak at large eps (raise --attack_steps)")
  return warnings


def zero_gradient_fraction(model, x, y, *, batch_size: int = 256) -> float:
  """Fraction of samples whose cross-entropy input gradient is exactly zero."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  zero = 0
  for i in range(0, len(x), batch_size):
    xb = tf.convert_to_tensor(x[i:i + batch_size])
    with tf.GradientTape() as tape:
      tape.watch(xb)
      loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
          y[i:i + batch_size], tf.cast(model(xb, training=False), tf.float32))
    g = tape.gradient(loss, xb).numpy().reshape(len(xb), -1)
    zero += int(np.sum(np.all(g == 0, axis=1)))
  return zero / max(1, len(x))


def query_sets(records: dict) -> dict:
  """Point sets for hull questions from the minimal-perturbation records of a suite.

  Returns split name -> (inputs (rows, ...), true labels (rows,), source indices (rows,)):
  `adv_<attack>_<norm>` the successful minimal adversarial examples (min_pgd per norm, cw_l2) and
  `flip_<attack>_<norm>` their flip points on the decision boundary.
  """
  out = {}
  keys = sorted(set(zip(records["attack"].tolist(), records["norm"].tolist())))
  for attack, norm in keys:
    if attack not in ("min_pgd", "cw_l2"):
      continue
    rows = (records["attack"] == attack) & (records["norm"] == norm)
    ok = rows & records["success"]
    out[f"adv_{attack}_{norm}"] = (records["x_adv"][ok], records["label"][ok],
                                   records["source_index"][ok])
    if "flip_found" in records:
      ok = rows & records["flip_found"]
      out[f"flip_{attack}_{norm}"] = (records["flip_point"][ok], records["label"][ok],
                                      records["source_index"][ok])
  return out
