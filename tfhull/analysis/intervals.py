"""95% intervals of headline numbers: a bootstrap over test samples within a seed and, where there
are several seeds, over the seeds too (a two-level bootstrap).

  iv = interval([correct_seed0, correct_seed1, correct_seed2], "mean")
  iv.estimate, iv.low, iv.high    # mean over seeds of each seed's statistic; its 95% interval

One replicate draws the seeds with replacement (only when there are several), then each drawn
seed's samples with replacement, and averages the drawn seeds' statistics; the interval is the
percentile interval of the replicates. With one seed it is the plain bootstrap over test samples
(the model's seed variation is then not in it: say so where it is shown).
"""

import dataclasses
from typing import Optional, Sequence

import numpy as np

STATISTICS = {"mean": np.mean, "median": np.median}


@dataclasses.dataclass(frozen=True)
class Interval:
  """A headline number and its interval; `per_seed` holds each seed's own value."""
  estimate: float
  low: float
  high: float
  statistic: str                # "mean" or "median" of the per-sample values.
  seeds: int
  samples: int                  # finite samples of the smallest seed.
  per_seed: tuple = ()
  level: float = 0.95

  def as_dict(self) -> dict:
    return {**dataclasses.asdict(self), "per_seed": list(self.per_seed)}


def interval(groups: Sequence[np.ndarray], statistic: str = "mean", *, level: float = 0.95,
             resamples: int = 1000, seed: int = 0, chunk: int = 100) -> Optional[Interval]:
  """The two-level bootstrap interval of `statistic` over `groups`.

  Args:
    groups: one 1-D array of per-sample values per seed (bool counts as 0/1); non-finite values
      are left out, seeds without finite values too.
    statistic: "mean" or "median".
    level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles of the replicates).
    resamples: bootstrap replicates; seed: their generator's seed (the interval is deterministic).
    chunk: replicates drawn at once (memory: chunk x samples values).
  Returns:
    the Interval, or None when no seed has a finite value.
  """
  if statistic not in STATISTICS:
    raise ValueError(f"statistic {statistic!r} is not one of {sorted(STATISTICS)}")
  if not 0 < level < 1 or resamples < 1:
    raise ValueError(f"level {level} must be in (0, 1) and resamples {resamples} >= 1")
  fn = STATISTICS[statistic]
  clean = []
  for g in groups:
    g = np.asarray(g, np.float64).ravel()
    g = g[np.isfinite(g)]
    if g.size:
      clean.append(g)
  if not clean:
    return None
  rng = np.random.default_rng(seed)
  per_seed = np.array([fn(g) for g in clean])
  boot = np.empty((len(clean), resamples))  # Each seed's statistic in each replicate.
  for s, g in enumerate(clean):
    for i in range(0, resamples, chunk):
      r = min(chunk, resamples - i)
      boot[s, i:i + r] = fn(g[rng.integers(0, g.size, (r, g.size))], axis=1)
  if len(clean) > 1:
    pick = rng.integers(0, len(clean), (resamples, len(clean)))
    reps = boot[pick, np.arange(resamples)[:, None]].mean(1)
  else:
    reps = boot[0]
  low, high = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
  return Interval(estimate=float(per_seed.mean()), low=float(low), high=float(high),
                  statistic=statistic, seeds=len(clean), samples=int(min(g.size for g in clean)),
                  per_seed=tuple(float(v) for v in per_seed), level=level)
