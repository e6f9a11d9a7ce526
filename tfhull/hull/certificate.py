"""The certificate of a hull distance: rigorous bounds from a pricing pass, in float64 on the host.

Shared by both methods (`solver` column generation, `projected_gradient`). For a direction w
(the residual x - A^T alpha), weak duality gives  d(x) >= (<w, x> - max_i <w, a_i>) / |w|; the
max comes from a pricing pass's top-m list, every candidate rescored in float64, every other point
bounded by its matmul score plus Higham's worst-case rounding allowance (`RoundingBounds`). The
upper bound |x - A^T alpha| is computed in float64 from the support rows (`combine_support`).
"""

import dataclasses
import math
from typing import Optional

import numpy as np


def gamma(k: int, u: float) -> float:
  """Higham's gamma_k = k u / (1 - k u): |fl(<x, y>) - <x, y>| <= gamma_k sum_j |x_j y_j| for a
  k-term inner product in any summation order (u: unit roundoff)."""
  if k * u >= 0.5:
    raise ValueError(f"gamma_k undefined for k = {k}, u = {u}")
  return k * u / (1.0 - k * u)


@dataclasses.dataclass(frozen=True)
class RoundingBounds:
  """Worst-case rounding allowances of one batch's certificate (per unit |w|).

  price: the pricing matmul <w, a32_i> in the compute dtype against the exact <w, a_i - mu>:
    gamma_d(u) |w| |a32_i| (the matmul) + u |w| |a_i - mu| (rounding of the stored centred
    points), bounded with the largest stored norm.
  host: the float64 rescoring and <w, x - mu> on the host: gamma_{d+2}(u64) |w| (|x - mu| +
    max_i |a_i - mu|) per query (B,).
  floor: absolute (not per unit |w|) allowance for underflow: Higham's bounds hold for normal
    numbers; each of the d products and partial sums that underflows adds at most the smallest
    subnormal eta, and each stored coordinate rounded to a subnormal adds eta |w_j| (the sqrt(d)
    eta term in `price`). Negligible after scale normalisation (points of norm ~1), but kept so
    the bound holds for any input.
  """
  price: float
  host: np.ndarray
  floor: float = 0.0

  def __init__(self, d: int, dtype: str, max_norm_a: float, norm_x: np.ndarray):
    u = float(np.finfo(dtype).eps) / 2
    u64 = float(np.finfo(np.float64).eps) / 2
    a_max = max_norm_a * (1.0 + 4 * u)  # Covers both the stored and the exact centred norms.
    eta = float(np.finfo(dtype).smallest_subnormal)
    eta64 = float(np.finfo(np.float64).smallest_subnormal)
    object.__setattr__(self, "price", ((gamma(d, u) + u) * a_max + math.sqrt(d) * eta)
                       * (1.0 + 4 * u64))
    object.__setattr__(self, "host", gamma(d + 2, u64) * 2.0 * (norm_x + a_max))
    object.__setattr__(self, "floor", 4.0 * (d + 2) * (eta + eta64))

  def take(self, rows: np.ndarray) -> "RoundingBounds":
    out = object.__new__(RoundingBounds)
    object.__setattr__(out, "price", self.price)
    object.__setattr__(out, "host", self.host[rows])
    object.__setattr__(out, "floor", self.floor)
    return out


def certified_max(a, mu, w, vals, idx, allowance) -> tuple[np.ndarray, np.ndarray]:
  """Upper bound on max_i <w, a_i - mu> per query (B,) from a pricing pass's top-m list, and the
  exact max over the rescored candidates alone (B,) (the bound where the allowance does not bind).

  Every listed candidate that could be the max (its matmul score plus `allowance` above the best
  float64 score of the first four) is rescored in float64; every other point scored at most
  vals[:, -1] in the matmul, so its exact score is below that plus `allowance` (B,) (worst-case
  rounding, `RoundingBounds.price` |w|). A list with unused (-1) entries held every point.

  Args:
    a: (n, d) points; mu: (d,) centre; w: (B, d) float64 directions.
    vals: (B, m) matmul scores, descending; idx: (B, m) int indices, -1 unused.
    allowance: (B,) rounding allowance of unlisted points.
  """
  # Rescore the first few in float64; a later candidate j needs its exact score only if it could
  # beat them (vals_j + allowance > their best); otherwise vals_j + allowance bounds it and it
  # cannot change the max. Same result as rescoring all, at a fraction of the gathers.
  head = min(4, idx.shape[1])
  exact = np.full(idx.shape, -np.inf)
  cand = a[np.maximum(idx[:, :head], 0)].astype(np.float64) - mu  # (B, head, d)
  exact[:, :head] = np.einsum("bjd,bd->bj", cand, w)
  exact = np.where(idx >= 0, exact, -np.inf)
  best = exact[:, :head].max(axis=1)
  need = np.logical_and(vals + allowance[:, None] > best[:, None], idx >= 0)
  need[:, :head] = False
  bi, bj = np.nonzero(need)
  for s in range(0, len(bi), 4096):  # Bounded float64 temporaries.
    sb, sj = bi[s:s + 4096], bj[s:s + 4096]
    exact[sb, sj] = np.einsum("kd,kd->k", a[idx[sb, sj]].astype(np.float64) - mu, w[sb])
  rest = np.where(idx[:, -1] >= 0, vals[:, -1] + allowance, -np.inf)
  return np.maximum(exact.max(axis=1), rest), exact.max(axis=1)


def exact_max(a, mu, w, block: int = 8192, rows: Optional[np.ndarray] = None) -> np.ndarray:
  """max_i <w, a_i - mu> (B,) over all n points (or the given `rows` of a) in float64 on the
  host (blocks of rows)."""
  top = np.full(w.shape[0], -np.inf)
  total = a.shape[0] if rows is None else len(rows)
  for s in range(0, total, block):
    part = a[s:s + block] if rows is None else a[rows[s:s + block]]
    top = np.maximum(top, ((part.astype(np.float64) - mu) @ w.T).max(axis=0))
  return top


def pass_lower_bound(a, mu, xc, w, vals, idx, bounds: RoundingBounds, rescore=None,
                      exact=None):
  """Certified lower bound on the distance from one pricing pass, with direction w (B, d).

  Returns (lb (B,) (may be negative; -inf where w = 0), top (B,) certified max_i <w, a_i - mu>,
  |w| (B,)). lb = (<w, x - mu> - top - host allowance) / |w|. `rescore(lb_candidates) -> (B,)
  bool` picks queries to rescore over all points in float64 when the allowance binds;
  `exact(w_rows, rows) -> (r,)` computes their max (default: over all of a).
  """
  rn = np.linalg.norm(w, axis=1)
  top, cand_top = certified_max(a, mu, w, vals, idx, bounds.price * rn + bounds.floor)
  if rescore is not None:
    # Queries whose bound is limited only by the rounding allowance of the unlisted points:
    # with the candidates' exact max alone they would meet their stopping rule. One float64 pass
    # over all points settles them (exactly, up to the float64 allowance).
    wx = (w * xc).sum(1)
    lb_cand = (wx - cand_top - bounds.host * rn - bounds.floor) / np.maximum(rn, 1e-300)
    rows = np.nonzero(rescore(lb_cand) & (top > cand_top))[0]
    if len(rows):
      top[rows] = exact_max(a, mu, w[rows]) if exact is None else exact(w[rows], rows)
  num = (w * xc).sum(1) - top - bounds.host * rn - bounds.floor
  lb = num / np.maximum(rn, 1e-300)
  lb = np.where(lb > 0, lb * (1.0 - 1e-14), lb)  # The division's own rounding.
  return np.where(rn > 0, lb, -np.inf), top, rn


def combine_support(a: np.ndarray, mu: np.ndarray, slots: np.ndarray,
                    alpha: np.ndarray) -> np.ndarray:
  """sum_j alpha_j (a_{slot_j} - mu) per query (B, d), float64, reading only the support rows."""
  qi, kj = np.nonzero(alpha > 0)  # Row-major: qi ascending, every query has a nonzero weight.
  rows = (a[slots[qi, kj]].astype(np.float64) - mu) * alpha[qi, kj][:, None]
  return np.add.reduceat(rows, np.searchsorted(qi, np.arange(alpha.shape[0])), axis=0)
