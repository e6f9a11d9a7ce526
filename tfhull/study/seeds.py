"""Repeated seeds of one study and the 95% intervals of its headline numbers.

  cfgs = [seeded(cfg, s) for s in (0, 1, 2)]           # the model seed: training and attacks
  dones = [run(build(c), ["report"], c) for c in cfgs]  # seed-independent nodes run once
  iv = headline_intervals(dones)                        # {"test_accuracy": Interval, ...}

The model seed sets the training seed (initialisation, batch order) and the attack seed; the data
keep `cfg.data.seed`, so the data, the pixel and Haar features and their test-set hull distances
have the same cache key under every seed and are computed once (the study graph shares nodes by
fingerprint). Intervals (`tfhull.analysis.intervals`): bootstrap over the test samples within a
seed, and over the seeds where there are several.
"""

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from tfhull.analysis import intervals as iv_lib
from tfhull.study.config import StudyConfig

# Short names of the ray categories (tfhull.analysis.rays.CATEGORIES, in that order).
RAY_CATEGORIES = ("behind the hull boundary", "between hull and sample", "beyond the sample",
                  "no crossing")


def seeded(cfg: StudyConfig, seed: int) -> StudyConfig:
  """`cfg` with model seed `seed` (training and attack seeds); the data seed is kept."""
  if seed < 0:
    from tfhull.errors import UserError  # pylint: disable=import-outside-toplevel
    raise UserError(f"--seeds lists {seed}; seeds must be >= 0")
  t, a = cfg.train, cfg.attack
  return dataclasses.replace(
      cfg, train=dataclasses.replace(t, training=dataclasses.replace(t.training, seed=int(seed))),
      attack=dataclasses.replace(a, attack=dataclasses.replace(a.attack, seed=int(seed))))


def sample_values(done: Mapping) -> dict:
  """Per-sample values behind the headline numbers of one study ({node key: Artifact}).

  Returns {metric: (statistic, values)} or {metric: {sub key: (statistic, values)}}, the metric
  names those of `tfhull.report.study.study_metrics`: test_accuracy (correct, 0/1),
  test_fraction_outside[space] (certified outside, 0/1), median_test_distance[space] (d_hull),
  median_dhull_over_dnn[space], median_minimal_l2["min_pgd/2", ...] (the L2 norm of each
  flipped, initially correct sample's minimal perturbation), worst_case_robust_accuracy[
  "<norm>/<eps>"] (correct and not broken by any attack, 0/1), ray_first_crossing[category]
  (0/1 per test sample).
  """
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  out = {}
  an = io.load_npz(done["analyze"].path("analysis.npz"))
  if "error_correct" in an:
    out["test_accuracy"] = ("mean", np.asarray(an["error_correct"], np.float64))
  hull = saved.load_set([a for k, a in done.items() if k.startswith("hull/")])
  outside, dist, ratio = {}, {}, {}
  for (space, split), a in hull.items():
    if split != "test":
      continue
    d = np.asarray(a["distance"], np.float64)
    nn = np.asarray(a["nearest_distance"], np.float64)
    outside[space] = ("mean", np.asarray(a["outside"], np.float64))
    dist[space] = ("median", d)
    ratio[space] = ("median", np.where(nn > 0, d / np.where(nn > 0, nn, 1.0), np.nan))
  out.update(test_fraction_outside=outside, median_test_distance=dist,
             median_dhull_over_dnn=ratio)
  if "attack" in done:
    out.update(_attack_values(io.load_npz(done["attack"].path("adversarial.npz")),
                              done["attack"].summary))
  if "ray_category" in an:
    cat = np.asarray(an["ray_category"])
    out["ray_first_crossing"] = {name: ("mean", (cat == i).astype(np.float64))
                                 for i, name in enumerate(RAY_CATEGORIES)}
  return out


def _attack_values(records: Mapping, summary: Mapping) -> dict:
  """Per-sample minimal L2 perturbations and worst-case robustness, as `attacks.summarize`
  computes their summaries (records: one block of the n attacked samples per attack/norm/eps)."""
  n = len(np.unique(np.asarray(records["source_index"])))
  if not n:
    return {}
  block = lambda k: np.asarray(records[k]).reshape(-1, n)  # pylint: disable=unnecessary-lambda-assignment
  attacks, norms, eps = block("attack")[:, 0], block("norm")[:, 0], block("eps")
  succ, l2 = block("success").astype(bool), block("l2").astype(np.float64)
  correct = block("clean_label")[0] == block("label")[0]
  minimal, worst = {}, {}
  for i, (a, nm) in enumerate(zip(attacks, norms)):
    if a in ("min_pgd", "cw_l2"):
      minimal[f"{a}/{nm}"] = ("median", np.where(succ[i] & correct, l2[i], np.nan))
  for nm, by_eps in (summary.get("worst_case_robust_accuracy") or {}).items():
    for e in by_eps:
      alive = correct.copy()
      for i, (a, n2) in enumerate(zip(attacks, norms)):
        if a == "min_pgd" or n2 != nm:
          continue
        if a == "cw_l2":
          alive &= ~(succ[i] & (l2[i] <= float(e) + 1e-6))
        elif np.isclose(eps[i, 0], float(e)):
          alive &= ~succ[i]
      worst[f"{nm}/{e}"] = ("mean", alive.astype(np.float64))
  return {"median_minimal_l2": minimal, "worst_case_robust_accuracy": worst}


def headline_intervals(dones: Sequence[Mapping], *, resamples: int = 1000) -> dict:
  """Intervals of every headline of `sample_values` over one or several seeds' studies: the same
  nesting, an `Interval` (as a dict) per number; a number some seed lacks is left out."""
  values = [sample_values(d) for d in dones]
  out = {}
  for name, v in values[0].items():
    if isinstance(v, tuple):
      if all(name in x for x in values):
        out[name] = _one(v[0], [x[name][1] for x in values], resamples)
    else:
      sub = {}
      for k, (stat, _) in v.items():
        if all(k in x.get(name, {}) for x in values):
          sub[k] = _one(stat, [x[name][k][1] for x in values], resamples)
      out[name] = {k: s for k, s in sub.items() if s is not None}
  return {k: v for k, v in out.items() if v is not None}


def _one(stat, groups, resamples):
  iv = iv_lib.interval(groups, stat, resamples=resamples)
  return None if iv is None else iv.as_dict()
