"""Certified, batched distances from queries to the convex hull of a point set.

For each query x and points A (n, d):  min_alpha |A^T alpha - x|  s.t. alpha >= 0, sum(alpha) = 1.

Algorithm (../shared/notes/hull-solver.md): column generation around pairwise Frank-Wolfe.
  1. Centre the points; one pass over A finds each query's nearest neighbours (warm start: alpha =
     e_nn, the m nearest points form the first working set).
  2. Solve the problem restricted to each query's working set of K slots (pairwise Frank-Wolfe
     with exact line search, in Gram space, `kernels.restricted_solve`).
  3. Price all n points with one full pass over A (true float32/float64 matmuls): the largest
     <a_i, r> gives the duality gap and so a certified interval for the distance; the m best
     violators join the working set. Repeat 2-3 until certified.
A is processed in chunks (n is bounded by host memory, not device memory) and, under a
`tf.distribute` strategy, its chunks are sharded across one host's replicas, each pricing its own
from an empty top-m list; the running list is merged with the replicas' lists once per group.
Across the workers of a multi-worker cluster the queries are sharded instead (whole batches, every
point on every worker, `sharding`), so every certificate prices all n points.

The certificate (weak duality, w = r/|r|): upper bound |x - A^T alpha|, computed in float64 on the
host from the returned weights, and lower bound <w, x> - max_i <w, a_i>. The max comes from the
full pass (true float32 or float64 matmuls): every candidate of its top-m list is rescored in
float64, and every other point is bounded by the m-th matmul score plus Higham's worst-case
inner-product bound gamma_d |w| max_i |a_i - mean| (gamma_d = d u / (1 - d u), u the unit
roundoff of the compute dtype; any summation order) and the rounding of the stored points; a
float64 allowance of the same form covers the host-side arithmetic. The lower bound is the
running maximum over passes, and never exceeds the upper bound.

Scale: points and queries are centred on the points' mean and multiplied by 2^-e (largest centred
point norm in [1/2, 1)); exact, so every bound scales back exactly by 2^e. Inputs outside the
accepted range (docs/solver.md, "Scale") raise `HullScaleError` (a UserError), one line.

Verdict per query (mutually exclusive, `HullResult.verdict`): OUTSIDE when the lower bound is
positive (certified, with the separating hyperplane), else INSIDE when the upper bound is at most
abs_tol (witnessed by the weights), else UNDETERMINED.
"""

import dataclasses
import functools
import math
from typing import Any, Optional

from absl import logging
import numpy as np

from tfhull.errors import UserError
from tfhull.hull import backend
from tfhull.hull import certificate
from tfhull.hull import kernels
from tfhull.hull import pricing
from tfhull.hull import sharding


class HullScaleError(UserError, ValueError):
  """Coordinates outside the range the solver accepts (docs/solver.md, "Scale"); one line."""


# Verdict codes (`HullResult.verdict`, int8; saved as such by `tfhull.hull.saved.measure`).
UNDETERMINED = 0  # Neither certified outside nor within abs_tol, within max_passes.
INSIDE = 1        # upper_bound <= abs_tol, witnessed by the weights (eps-inside); not OUTSIDE.
OUTSIDE = 2       # lower_bound > 0: certified outside, with a separating hyperplane.
VERDICT_NAMES = ("undetermined", "inside", "outside")  # Indexed by the code.


def verdict_counts(verdict: np.ndarray, converged: np.ndarray) -> dict[str, int]:
  """Rows per verdict code, and those not converged (any verdict)."""
  return {"outside": int(np.sum(verdict == OUTSIDE)), "inside": int(np.sum(verdict == INSIDE)),
          "undetermined": int(np.sum(verdict == UNDETERMINED)),
          "unconverged": int(np.sum(~converged))}


def _certified_lower(lb: np.ndarray, ub: np.ndarray) -> np.ndarray:
  """Scaled-back lower bounds kept only where normal (a subnormal one may have been rounded up),
  and never above the upper bounds (both are valid: lb <= d* <= ub)."""
  return np.minimum(np.where(lb >= np.finfo(np.float64).tiny, lb, 0.0), ub)


def verdicts(lower_bound: np.ndarray, upper_bound: np.ndarray, abs_tol: np.ndarray) -> np.ndarray:
  """(q,) int8 verdict codes: OUTSIDE if lower_bound > 0, else INSIDE if upper_bound <= abs_tol,
  else UNDETERMINED. A query certified outside at a distance below abs_tol is OUTSIDE."""
  return np.where(lower_bound > 0, OUTSIDE,
                  np.where(upper_bound <= abs_tol, INSIDE, UNDETERMINED)).astype(np.int8)


@dataclasses.dataclass(frozen=True)
class HullResult:
  """Distances of q queries to the convex hull of n points in d dimensions (numpy arrays).

  `lower_bound <= exact distance <= upper_bound` is certified (worst-case rounding bounds, see
  the module docstring); `distance` is `upper_bound`, attained by
  `projection = points[support] @ weights`. `outside`, `inside` and the undetermined rest are
  mutually exclusive (`verdict`).
  """
  distance: np.ndarray          # (q,) float64, |x - projection|.
  lower_bound: np.ndarray       # (q,) float64, >= 0.
  upper_bound: np.ndarray       # (q,) float64.
  rel_gap: np.ndarray           # (q,) (upper - lower) / upper.
  outside: np.ndarray           # (q,) bool, certified: lower_bound > 0.
  inside: np.ndarray            # (q,) bool, distance <= abs_tol (eps-inside; weights witness it)
                                # and not `outside`.
  converged: np.ndarray         # (q,) bool, rel_gap <= rel_tol or distance <= abs_tol.
  projection: np.ndarray        # (q, d) float64, the closest point of the hull found.
  support: np.ndarray           # (q, k) int64 indices into points, -1 padded, by weight.
  weights: np.ndarray           # (q, k) float64 >= 0, rows sum to 1.
  nnz: np.ndarray               # (q,) number of points forming the projection.
  nearest_index: np.ndarray     # (q,) int64, nearest point.
  nearest_distance: np.ndarray  # (q,) float64, distance to it.
  hyperplane_normal: np.ndarray  # (q, d) unit w; <w, a_i> <= offset < <w, x> when outside.
  hyperplane_offset: np.ndarray  # (q,) offset b.
  abs_tol: np.ndarray           # (q,) absolute tolerance used for `inside`.
  passes: np.ndarray            # (q,) full passes over the points (the nearest-neighbour one too).
  iterations: np.ndarray        # (q,) restricted Frank-Wolfe steps.
  rel_tol: float = 1e-4
  verdict: Optional[np.ndarray] = None  # (q,) int8: OUTSIDE (2), INSIDE (1), UNDETERMINED (0);
                                        # derived from outside/inside when not given.

  def __post_init__(self):
    if self.verdict is None:
      code = np.where(self.outside, OUTSIDE, np.where(self.inside, INSIDE, UNDETERMINED))
      object.__setattr__(self, "verdict", code.astype(np.int8))

  @property
  def undetermined(self) -> np.ndarray:
    """(q,) bool: neither outside nor inside."""
    return self.verdict == UNDETERMINED

  @property
  def verdict_names(self) -> np.ndarray:
    """(q,) str: 'outside', 'inside' or 'undetermined'."""
    return np.asarray(VERDICT_NAMES, dtype=object)[self.verdict].astype(str)

  def counts(self) -> dict[str, int]:
    """Queries per verdict, and those not converged (any verdict)."""
    return verdict_counts(self.verdict, self.converged)

  @property
  def ratio_to_nearest(self) -> np.ndarray:
    """d_hull / d_NN (1 when the query sits on a point)."""
    return np.where(self.nearest_distance > 0,
                    self.distance / np.maximum(self.nearest_distance, 1e-300), 1.0)

  def summary(self) -> dict[str, Any]:
    """JSON-ready headline numbers."""
    def q(a):
      return {p: float(np.percentile(a, p)) for p in (5, 25, 50, 75, 95)} if a.size else {}
    return {
        "queries": int(self.distance.size),
        **self.counts(),
        "fraction_undetermined": float(np.mean(self.undetermined)) if self.verdict.size else 0.0,
        "fraction_outside_certified": float(np.mean(self.outside)) if self.outside.size else 0.0,
        "fraction_inside": float(np.mean(self.inside)) if self.inside.size else 0.0,
        "fraction_converged": float(np.mean(self.converged)) if self.converged.size else 0.0,
        "distance": q(self.distance),
        "nearest_distance": q(self.nearest_distance),
        "ratio_to_nearest": q(self.ratio_to_nearest),
        "nnz": q(self.nnz.astype(float)),
        "max_rel_gap_outside": float(np.max(self.rel_gap[self.outside])) if self.outside.any()
                               else None,
        "mean_passes": float(np.mean(self.passes)) if self.passes.size else 0.0,
        "mean_iterations": float(np.mean(self.iterations)) if self.iterations.size else 0.0,
    }


@dataclasses.dataclass(frozen=True)
class SolverConfig:
  """Knobs of `project_onto_hull` (defaults fit a 2-core CPU as well as one GPU)."""
  rel_tol: float = 1e-4          # Stop when (UB - LB) / UB <= rel_tol ...
  abs_tol: Optional[float] = None  # ... or UB <= abs_tol (default 1e-4 * d_NN, see below).
  max_passes: int = 40           # Full passes over the points per batch (pricing GEMMs).
  batch_size: int = 256          # Queries solved together (static shape).
  working_set_size: int = 0      # K slots per query; must exceed the support size + m. 0: auto,
                                 # 128, or 256 from n = _LARGE_N points (below).
  atoms_per_pass: int = 0        # m violators added per pass. 0: auto, 16, or 128 from n =
                                 # _LARGE_N when K is automatic too: a pricing pass then costs
                                 # more than the working-set work, so fewer, fatter passes pay.
  certify_candidates: int = 64   # Top-scoring points per pass rescored in float64 for the
                                 # certificate (>= atoms_per_pass); the rest get the worst-case
                                 # rounding allowance, so more candidates = tighter bounds.
  chunk_size: int = 16384        # Rows of A per pricing matmul.
  device_bytes: int = 4 << 30    # Keep A on the device up to this size; beyond, stream chunks.
  refresh_every: int = 32        # Gram-space steps between exact residual refreshes.
  max_inner_steps: int = 256     # Restricted Frank-Wolfe steps per pass (stragglers continue
                                 # after the next pricing pass, in a compacted batch).
  subspace_steps: int = 8        # Conjugate-gradient steps of each subspace (minor-cycle) step,
  subspace_every: int = 4        # taken every this many refresh rounds (0 steps: never),
  subspace_below: float = 0.05   # by queries whose residual is below this fraction of d_NN.
  polish_max_dim: int = 4096     # Near/inside queries (residual below subspace_below x d_NN)
                                 # of problems with d <= this get an exact float64 NNLS solve
                                 # on their working set after each pass (0: never).
  exact_rescore: bool = True     # Queries held back only by the rounding allowance get one
                                 # float64 pass over all points on the host (exact bound).
  gram_state: bool = True        # Restricted-solve refreshes in Gram space (False: p-space).
  compact: bool = True           # Converged queries leave the batch: the device state shrinks
                                 # to a quarter when at most a quarter of its queries are live.
  adaptive_working_set: bool = True  # Gram-space working sets start at min(K, max(2m, 32))
                                 # slots and double (up to K) when a live query has no free slot
                                 # for its new atoms: insertion and restricted-solve costs follow the
                                 # support size, not K (per-class hulls: small supports).
  dtype: str = "float32"         # Compute dtype: float32 or float64.
  progress: Optional[bool] = None  # tqdm bar (queries, batches, passes, live queries) on stderr:
                                 # True always, False never, None once a solve has run
  progress_delay_s: float = 3.0  # this many seconds.
  progress_label: str = ""       # Prefix of the bar's description (e.g. "class 3/10: ").


def _as_array(x, what: str) -> np.ndarray:
  if hasattr(x, "numpy"):
    x = x.numpy()
  try:
    x = np.asarray(x)
  except Exception as e:
    raise ValueError(f"{what} must be an array, got {type(x).__name__}") from e
  if x.dtype.kind not in "fiu":
    raise ValueError(f"{what} must be numeric (float32/float64), got dtype {x.dtype}")
  if x.ndim != 2:
    raise ValueError(f"{what} must be 2-D (rows are points), got shape {x.shape}; "
                     "flatten images to (n, h*w*c) first")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{what} contains NaN or Inf values; clean or drop those rows first")
  return x


@dataclasses.dataclass(frozen=True)
class ClassRows:
  """Per-class hulls solved as one problem: row r asks for the distance of query row_query[r]
  to the hull of the points labelled row_class[r] (`classes.per_class_distances`)."""
  labels: np.ndarray     # (n,) int class of each point, in [0, num_classes).
  num_classes: int
  row_query: np.ndarray  # (P,) int query of each solve row.
  row_class: np.ndarray  # (P,) int class hull of each solve row.


# Per-class batches hold whole queries (all classes each) and at most this many bytes of
# working-set Gram matrices (rows x K^2 x 4).
_CLASS_BATCH_BYTES = 1 << 30
# Result keys kept of per-class solves (no (P, d) projections or hyperplanes).
_CLASS_KEYS = ("lower_bound", "upper_bound", "abs_tol", "converged", "passes", "iterations",
               "nearest_distance")


def project_onto_hull(points, queries, *, rel_tol: float = 1e-4, abs_tol: Optional[float] = None,
                      max_passes: int = 40, batch_size: int = 256, strategy=None,
                      method: str = "column_generation", **kwargs) -> HullResult:
  """Projects each query onto the convex hull of `points`, with a certified distance interval.

  Args:
    points: (n, d) float32/float64 array or tensor, the hull's generators (e.g. training images,
      flattened).
    queries: (q, d) array or tensor.
    rel_tol: stop a query when (upper - lower) / upper <= rel_tol (outside points).
    abs_tol: stop a query when its distance <= abs_tol and call it inside (eps-inside). Default
      per query: 1e-4 * (distance to the nearest point), but at least the rounding floor
      10 sqrt(d) eps (|x| + |a|_max) of the compute dtype.
    max_passes: full passes over the points per batch of queries.
    batch_size: queries solved together.
    strategy: optional tf.distribute strategy (TensorFlow backend): the points are sharded across
      one host's replicas, each pricing its shard, results merged; under a multi-worker
      MultiWorkerMirroredStrategy each worker solves whole batches of queries against all points
      on its local replicas and the results are gathered (call it on every worker).
    method: "column_generation" (this module), "projected_gradient" (`projected_gradient.py`:
      FISTA in one XLA program per batch, the same certificate) or "auto"
      (`projected_gradient.choose_method`; docs/solver-methods.md).
    **kwargs: further `SolverConfig` fields (working_set_size, atoms_per_pass, chunk_size,
      refresh_every, max_inner_steps, dtype, progress), or `projected_gradient.PGConfig` fields
      with that method.

  Returns:
    HullResult (numpy arrays).

  Raises:
    ValueError: shapes disagree, NaN/Inf values, empty point set, bad settings.
  """
  if method != "column_generation":
    from tfhull.hull import projected_gradient  # pylint: disable=g-import-not-at-top
    method = projected_gradient.resolve_method(method, points, kwargs)
    if method == "projected_gradient":
      return projected_gradient.project_onto_hull_pg(
          points, queries, rel_tol=rel_tol, abs_tol=abs_tol, max_passes=max_passes,
          batch_size=batch_size, strategy=strategy, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k not in projected_gradient.PG_ONLY}
  cfg, a, x = _inputs(points, queries, dict(kwargs, rel_tol=rel_tol, abs_tol=abs_tol,
                                            max_passes=max_passes, batch_size=batch_size))
  backend.check_strategy(strategy)
  with backend.full_precision_matmuls():
    res = _solve(a, x, cfg, strategy)
  _report_unconverged(res.counts(), cfg.max_passes)
  return res


def project_onto_class_hulls(points, queries, classes: ClassRows, *, strategy=None,
                             **kwargs) -> dict:
  """Distances of queries to several class hulls in one solve (`classes.per_class_distances`).

  Row r of the result is query classes.row_query[r] against the hull of the points labelled
  classes.row_class[r]. Each pass prices every row against its own class's points in one
  batched GEMM. kwargs: `SolverConfig` fields (`method` may only resolve to column generation).
  Under a multi-worker strategy the batches (whole queries) are shared between the workers, as
  in `project_onto_hull`; each worker prices on its default device (the class pricer is not
  sharded over local replicas: pricing is a small share of a per-class solve).

  Returns:
    dict of (P,) numpy arrays: upper_bound, lower_bound, abs_tol, nearest_distance, verdict,
    converged, passes, iterations.
  """
  kwargs = {k: v for k, v in kwargs.items() if k != "method"}
  from tfhull.hull import projected_gradient  # pylint: disable=g-import-not-at-top
  kwargs = {k: v for k, v in kwargs.items() if k not in projected_gradient.PG_ONLY}
  cfg, a, x = _inputs(points, queries, kwargs)
  backend.check_strategy(strategy)
  with backend.full_precision_matmuls():
    res = _solve(a, x, cfg, strategy, classes)
  _report_unconverged(verdict_counts(res["verdict"], res["converged"]), cfg.max_passes,
                      "(query, class hull) pairs")
  return res


def _inputs(points, queries, options: dict) -> tuple[SolverConfig, np.ndarray, np.ndarray]:
  """The checked SolverConfig and the points (n, d) and queries (q, d) as numpy arrays."""
  unknown = set(options) - {f.name for f in dataclasses.fields(SolverConfig)}
  if unknown:
    raise TypeError(f"unknown solver option(s) {sorted(unknown)}")
  cfg = SolverConfig(**options)
  _check_config(cfg)
  a = _as_array(points, "points")
  x = _as_array(queries, "queries")
  if a.shape[0] == 0:
    raise ValueError("points is empty: the hull of no points is undefined")
  if x.shape[1] != a.shape[1]:
    raise ValueError(f"queries have {x.shape[1]} dimensions but points have {a.shape[1]}; "
                     "use the same space (and flattening) for both")
  return cfg, a, x


# From this many points on, the automatic policy takes m = 128 atoms per pass into K = 256 slots
# with up to 1,024 restricted-solve steps per pass (else 16 into 128, 256 steps). Measured (d = 784
# structured images, 256 queries, CPU): at n = 60,000 mean passes 8.70 -> 5.28 at 0.68x the CPU
# time (5.88 with 256 steps); at n = 10,000 it would cut passes 7.05 -> 4.68 but cost 2.7x the CPU
# time (insertion and the restricted solve grow as m K, pricing only as n).
_LARGE_N = 32768


def _pricing_policy(cfg: SolverConfig, n: int) -> tuple[int, int, int]:
  """(m, K, inner steps): atoms per pass, working-set slots and restricted-solve steps per pass,
  resolving 0 (automatic) by n; the large-n policy also allows at least 1,024 inner steps, as
  a pass costs more than they do."""
  large = n >= _LARGE_N and not cfg.working_set_size  # An explicit K keeps m = 16 (its room).
  k = cfg.working_set_size or (256 if large else 128)
  m = min(cfg.atoms_per_pass or (128 if large else 16), n)
  inner = max(cfg.max_inner_steps, 1024) if large else cfg.max_inner_steps
  return m, max(min(k, pricing.pow2(n)), m), inner


def _check_config(cfg: SolverConfig) -> None:
  if not 0 < cfg.rel_tol < 1:
    raise ValueError(f"rel_tol must be in (0, 1), got {cfg.rel_tol}")
  if cfg.abs_tol is not None and cfg.abs_tol < 0:
    raise ValueError(f"abs_tol must be >= 0, got {cfg.abs_tol}")
  for name in ("max_passes", "batch_size", "chunk_size", "refresh_every", "max_inner_steps"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
  for name in ("working_set_size", "atoms_per_pass"):
    if getattr(cfg, name) < 0:
      raise ValueError(f"{name} must be >= 1 (or 0: automatic), got {getattr(cfg, name)}")
  if cfg.certify_candidates < 1:
    raise ValueError(f"certify_candidates must be >= 1, got {cfg.certify_candidates}")
  if cfg.dtype not in ("float32", "float64"):
    raise ValueError(f"dtype must be float32 or float64, got {cfg.dtype!r}")
  if cfg.dtype == "float64" and backend.name() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    if not jax.config.jax_enable_x64:
      raise ValueError("dtype='float64' under JAX needs jax.config.update('jax_enable_x64', True)")


def _solve(a: np.ndarray, x: np.ndarray, cfg: SolverConfig, strategy,
           classes: Optional[ClassRows] = None):
  """One hull (HullResult), or with `classes` per-class hulls in one solve (a dict of (P,)
  arrays, `_CLASS_KEYS`, scaled back)."""
  n, d = a.shape
  q = x.shape[0] if classes is None else len(classes.row_query)
  eps = float(np.finfo(cfg.dtype).eps)
  mu = a.mean(axis=0, dtype=np.float64)
  # Scale normalisation: the solver works on (a_i - mu) 2^-e and (x - mu) 2^-e, with e chosen so
  # the largest centred point norm lies in [1/2, 1). Scaling by a power of two is exact in
  # floating point, so the normalised problem is the centred one up to a factor 2^e, every
  # rounding bound (relative) carries over unchanged, and distances and bounds scale back exactly.
  e = _scale_exponent(a, mu, x, cfg.dtype)
  view = _Centred(a, mu, e)
  a_c = np.empty((n, d), dtype=cfg.dtype)
  for s in range(0, n, 65536):  # Centre in float64, block by block (bounded temporaries).
    a_c[s:s + 65536] = view[s:s + 65536]
  max_norm_a = float(np.sqrt((a_c.astype(np.float64) ** 2).sum(1).max()))
  if cfg.abs_tol is not None:
    cfg = dataclasses.replace(cfg, abs_tol=float(np.ldexp(cfg.abs_tol, -e)))
  hull_n = n if classes is None else int(np.bincount(classes.labels).max())
  m, k, inner = _pricing_policy(cfg, hull_n)
  cfg = dataclasses.replace(cfg, max_inner_steps=inner)
  b = max(1, min(cfg.batch_size, q))
  if classes is not None:  # Whole queries: batch_size queries x c classes (memory permitting).
    c = classes.num_classes
    b = c * max(1, min(cfg.batch_size, _CLASS_BATCH_BYTES // (4 * k * k * c), q // c))
  n_batches = -(-q // b)
  # Multi-worker: whole batches of queries per worker, all points on each (`sharding`); the
  # pricer uses this worker's local replicas. Fewer batches than workers: each solves them all.
  workers, index, local = sharding.layout(strategy)
  if n_batches < workers:
    workers, index = 1, 0
  if classes is None:
    pricer = pricing.Pricer(a_c, cfg, min(max(m, cfg.certify_candidates), n), local, batch=b)
  else:
    pricer = pricing.ClassPricer(a_c, classes.labels, classes.num_classes, cfg,
                          min(max(m, cfg.certify_candidates), hull_n))
  if cfg.gram_state:
    # Gram-space working sets read their points from the device copy of A (or, when A streams
    # from the host, from a host-gathered table of the rows they need).
    table = None if pricer.stream else backend.to_device(a_c)
    insert = _GramInserter(backend.compile_fn(kernels.insert_gram), a_c, table)
  else:
    insert = backend.compile_fn(kernels.insert_atoms)
  combine = backend.compile_fn(kernels.combine)
  solve = backend.compile_fn(
      kernels.restricted_solve, refresh_every=cfg.refresh_every,
      max_refreshes=max(1, cfg.max_inner_steps // cfg.refresh_every),
      cg_steps=cfg.subspace_steps, subspace_every=cfg.subspace_every,
      gram_state=cfg.gram_state)

  out = _Outputs(q, d)
  desc = f"hull (n={n}, d={d})" if classes is None else \
      f"{classes.num_classes} class hulls (n={n}, d={d}, query x class)"
  bar = _progress_bar(cfg, total=q, desc=cfg.progress_label + desc)
  parts, sizes = {}, [min(b, q - start) for start in range(0, q, b)]
  for i in sharding.my_batches(n_batches, workers, index):
    rows = slice(i * b, i * b + sizes[i])
    # Padding: copies of the batch's first real row.
    pick = np.arange(rows.start, rows.start + b).clip(max=rows.stop - 1)
    pick[rows.stop - rows.start:] = rows.start
    xb = x[pick if classes is None else classes.row_query[pick]].astype(np.float64)
    groups = None if classes is None else classes.row_class[pick]
    real = np.arange(b) < rows.stop - rows.start

    def on_pass(p, live, i=i):
      if bar is not None:
        bar.set_postfix_str(f"batch {i + 1}/{n_batches} pass {p}/{cfg.max_passes} "
                            f"live {live}", refresh=False)
        bar.update(0)
    res = _solve_batch(view, a_c, np.zeros(d), np.ldexp(xb - mu, -e), real, pricer, insert,
                       combine, solve, cfg, m, k, eps, max_norm_a, on_pass, groups)
    parts[i] = {key: val[real] for key, val in res.items()
                if classes is None or key in _CLASS_KEYS}
    if bar is not None:
      done = list(parts.values())
      bar.set_postfix_str(
          f"batch {i + 1}/{n_batches} outside {sum(np.sum(p['lower_bound'] > 0) for p in done)} "
          f"unconverged {sum(np.sum(~p['converged']) for p in done)} passes "
          f"{np.mean(np.concatenate([p['passes'] for p in done])):.1f}", refresh=False)
      bar.update(rows.stop - rows.start)
  parts = sharding.share(parts, sizes, strategy, workers, index)
  if bar is not None:
    bar.close()
  if classes is not None:
    return _scaled_back({key: np.concatenate([p[key] for p in parts]) for key in _CLASS_KEYS}, e)
  for i, part in enumerate(parts):
    out.put(slice(i * b, i * b + sizes[i]), part)
  return out.result(mu, e, cfg.rel_tol)


def _scaled_back(res: dict, e: int) -> dict:
  """Per-class solve results in the data's units (x 2^e, exact), with the verdict."""
  out = dict(res)
  for key in ("upper_bound", "lower_bound", "abs_tol", "nearest_distance"):
    out[key] = np.ldexp(res[key], e)
  out["lower_bound"] = _certified_lower(out["lower_bound"], out["upper_bound"])
  out["verdict"] = verdicts(out["lower_bound"], out["upper_bound"], out["abs_tol"])
  return out


# Accepted scales (docs/solver.md, "Scale"). The normalisation exponent e (largest centred point
# norm 2^e, to a factor 2) must keep results and their rounding bounds in the normal float64
# range; and queries may lie at most _MAX_QUERY_RATIO[dtype] times farther from the points' mean
# than the largest centred point norm (beyond, the float32 working-set Gram matrices, whose entries
# grow as the squared ratio, overflow or lose every digit).
_MAX_EXPONENT = 930  # 2^930 ~ 1e280.
_MAX_QUERY_RATIO = {"float32": 2.0 ** 40, "float64": 2.0 ** 100}


def _scale_exponent(a: np.ndarray, mu: np.ndarray, x: np.ndarray, dtype: str) -> int:
  """e with max_i |a_i - mu| 2^-e in [1/2, 1) (the queries' norms where all points coincide).

  Raises HullScaleError (one line) where the coordinates lie outside the accepted range."""
  def max_norm(arr):
    best = 0.0
    for s in range(0, arr.shape[0], 65536):
      blk = arr[s:s + 65536].astype(np.float64) - mu
      top = float(np.abs(blk).max(initial=0.0))
      if not np.isfinite(top):
        raise HullScaleError("coordinates overflow float64 after centring on the points' mean; "
                             "rescale the data (e.g. divide by its largest magnitude)")
      if top > 0:  # Prescale by a power of two, so the norms cannot overflow.
        f = math.frexp(top)[1]
        best = max(best, math.ldexp(float(np.sqrt((np.ldexp(blk, -f) ** 2).sum(1).max())), f))
    return best
  spread = max_norm(a)
  reach = max_norm(x)
  if spread == 0.0:  # One distinct point: its distance to the queries sets the scale.
    spread = reach if reach > 0 else 1.0
  if not np.isfinite(spread):
    raise HullScaleError("point norms overflow float64; rescale the data")
  e = math.frexp(spread)[1]
  if abs(e) > _MAX_EXPONENT:
    raise HullScaleError(f"the points' spread {spread:.3g} (largest norm about their mean) is "
                         f"outside the accepted range [1e-280, 1e280]; rescale the data")
  ratio = reach / spread
  if ratio > _MAX_QUERY_RATIO[dtype]:
    raise HullScaleError(
        f"queries lie up to {ratio:.3g} times farther from the points' mean than the points' "
        f"spread ({spread:.3g}); {dtype} accepts up to {_MAX_QUERY_RATIO[dtype]:.3g}: drop such "
        "far queries (their distance is about their distance to the mean) or use dtype='float64'")
  return e


class _Centred:
  """The normalised points (a_i - mu) 2^-e as float64 rows, read on demand (`view[rows]`).

  Scaling by a power of two is exact, so the rows differ from a_i - mu by the factor only."""

  def __init__(self, a: np.ndarray, mu: np.ndarray, e: int):
    self.a, self.mu, self.e = a, mu, int(e)
    self.shape = a.shape

  def __getitem__(self, rows) -> np.ndarray:
    return np.ldexp(self.a[rows].astype(np.float64) - self.mu, -self.e)

  def __len__(self) -> int:
    return self.shape[0]


def _progress_bar(cfg: SolverConfig, total: int, desc: str):
  """A progress bar on stderr (`console.progress`: log lines without a terminal): always with
  progress=True, never with False, and with None (default) only once the solve has run
  `progress_delay_s` seconds."""
  if cfg.progress is False:
    return None
  from tfhull import console  # pylint: disable=g-import-not-at-top
  return console.progress(total=total, desc=desc, unit="query", mininterval=1.0,
                          delay=0.0 if cfg.progress else cfg.progress_delay_s)


def _solve_batch(a, a_c, mu, xc, real, pricer, insert, combine, solve, cfg, m, k, eps,
                 max_norm_a, on_pass=lambda p, live: None, groups=None):
  """One batch of B (padded) centred queries xc (B, d) float64; returns per-query arrays.
  `groups` (B,): each row's class hull (with a `ClassPricer`), or None (one hull)."""
  bsz, d = xc.shape
  dt = cfg.dtype
  x32 = xc.astype(dt)
  norm_x = np.linalg.norm(xc, axis=1)
  rounding = math.sqrt(d) * eps  # Typical-case rounding: sets the abs_tol floor, not the bounds.
  bounds = certificate.RoundingBounds(d, cfg.dtype, max_norm_a, norm_x)

  # Pass 1: nearest neighbours (warm start and the d_NN baseline).
  vals, idx = pricer(x32, nearest=True, groups=groups)
  nearest = idx[:, 0]
  d_nn = np.linalg.norm(xc - (a[nearest].astype(np.float64) - mu), axis=1)
  floor = 10.0 * rounding * (norm_x + max_norm_a)
  abs_tol = np.maximum(cfg.abs_tol if cfg.abs_tol is not None else 1e-4 * d_nn, floor)

  # kk: the device state's current working-set width (grows up to k, see `adaptive_working_set`).
  kk = min(k, max(2 * m, 32)) if cfg.gram_state and cfg.adaptive_working_set else k
  slots = backend.to_device(np.full((bsz, kk), -1, np.int32))
  gram = backend.to_device(np.zeros((bsz, kk, kk), dt))
  alpha0 = np.zeros((bsz, kk), dt)
  x_dev = backend.to_device(x32)
  if cfg.gram_state:
    vecs = gram  # Unused by the Gram-space kernels (a placeholder argument).
    slots, gram = insert(slots, gram, backend.to_device(alpha0), idx[:, :m],
                         vals[:, :m] > kernels.NEG / 2, x_dev)
  else:
    vecs = backend.to_device(np.zeros((bsz, k, d), dt))
    slots, vecs, gram = insert(slots, vecs, gram, backend.to_device(alpha0),
                               backend.to_device(idx[:, :m].astype(np.int32)),
                               backend.to_device(a_c[np.maximum(idx[:, :m], 0)]),
                               backend.to_device(vals[:, :m] > kernels.NEG / 2))
  alpha0[:, 0] = 1.0  # The nearest neighbour (candidate 0) went into slot 0.
  alpha = backend.to_device(alpha0)

  best_lb = np.full(bsz, -np.inf)
  res = {
      "lower_bound": np.zeros(bsz), "normal": np.zeros((bsz, d)), "offset": np.zeros(bsz),
      # Start from the warm start, so padding rows (never active) are well-formed too.
      "slots": np.full((bsz, k), -1, np.int64), "alpha": np.zeros((bsz, k)),
      "passes": np.ones(bsz, np.int64), "iterations": np.zeros(bsz, np.int64),
      "nearest_index": nearest, "nearest_distance": d_nn, "abs_tol": abs_tol,
  }
  res["slots"][:, :kk] = backend.to_numpy(slots)
  res["alpha"][:, :kk] = alpha0
  inner_rel = backend.to_device(np.asarray(0.25 * cfg.rel_tol, dt))
  # The working view: `rows` (b,) are the batch rows held by the device state, `live` those still
  # being solved. Converged queries leave it: when at most a quarter is live, the state is
  # compacted (gathered) into a batch a quarter the size (at least pricing.MIN_ROWS rows).
  rows = np.arange(bsz)
  live = real.copy()
  # Passes converge on float32 quantities; the final interval is recomputed exactly below, so
  # keep a hair of margin to the tolerances.
  margin = 1.0 - 1e-3
  for p in range(2, cfg.max_passes + 1):
    on_pass(p, int(live.sum()))
    xv, nv = xc[rows], d_nn[rows]
    abs_tol2 = backend.to_device(((0.5 * abs_tol[rows]) ** 2).astype(dt))
    subspace_r2 = backend.to_device(((cfg.subspace_below * nv) ** 2).astype(dt))
    if d <= min(_PRESOLVE_DIM, cfg.polish_max_dim):
      # Low dimension: the exact solve on each working set first, so queries already inside
      # their working set's hull skip the Frank-Wolfe steps altogether.
      alpha_np = backend.to_numpy(alpha).astype(np.float64)
      r0 = xv - certificate.combine_support(a, mu, backend.to_numpy(slots).astype(np.int64),
                                            alpha_np)
      if _polish(a, mu, xv, backend.to_numpy(slots), alpha_np, r0, np.linalg.norm(r0, axis=1),
                 np.nonzero(live)[0]):
        alpha = backend.to_device(alpha_np.astype(dt))
    alpha, its = solve(x_dev, vecs, gram, alpha, slots, backend.to_device(live), abs_tol2,
                       subspace_r2, inner_rel)
    # From here on only the live rows `lv` of the view: residuals, pricing and certificate.
    lv = np.nonzero(live)[0]
    tl = rows[lv]  # Their batch rows.
    slots_np = backend.to_numpy(slots).astype(np.int64)
    alpha_np = backend.to_numpy(alpha).astype(np.float64)
    xl = xv[lv]
    if cfg.gram_state:  # Exactly, in float64, from the support rows.
      r = xl - certificate.combine_support(a, mu, slots_np[lv], alpha_np[lv])
    else:
      r = xl - backend.to_numpy(combine(alpha, vecs)).astype(np.float64)[lv]
    ub = np.linalg.norm(r, axis=1)
    near = np.nonzero(ub <= cfg.subspace_below * nv[lv])[0]
    if d <= cfg.polish_max_dim and len(near):
      alpha_l = alpha_np[lv]
      if _polish(a, mu, xl, slots_np[lv], alpha_l, r, ub, near):
        alpha_np[lv] = alpha_l
        alpha = backend.to_device(alpha_np.astype(dt))
    r32 = r.astype(dt)
    w = r32.astype(np.float64)
    grp = None if groups is None else groups[tl]
    vals, idx = pricer(r32, nearest=False, groups=grp)
    # At most _MAX_EXACT_ROWS live queries per pass may get the float64 pass over all points.
    def rescore(lb_cand, ub=ub, best=best_lb[tl]):
      gap_ok = ub - np.maximum(np.maximum(lb_cand, best), 0.0) <= margin * cfg.rel_tol * ub
      out = np.zeros(len(lb_cand), bool)
      out[np.nonzero(gap_ok)[0][:_MAX_EXACT_ROWS]] = True
      return out
    lb, top, rn = certificate.pass_lower_bound(
        a, mu, xl, w, vals, idx, bounds.take(tl), rescore if cfg.exact_rescore else None,
        exact=lambda w_sel, sel, grp=grp: pricer.exact_max(a, w_sel, None if grp is None
                                                           else grp[sel]))
    safe = np.maximum(rn, 1e-300)
    # The lower bound is the running maximum over passes (each pass's bound is valid on its own);
    # the hyperplane is the one of the best pass.
    better = lb > best_lb[tl]
    tgt = tl[better]
    best_lb[tgt] = lb[better]
    res["normal"][tgt] = (w / safe[:, None])[better]
    res["offset"][tgt] = (top / safe)[better]  # Centred; the mean is added in `result`.
    lower = np.maximum(best_lb[tl], 0.0)
    relgap = np.where(ub > 0, (ub - lower) / np.maximum(ub, 1e-300), 0.0)
    done = np.logical_or(relgap <= margin * cfg.rel_tol, ub <= margin * abs_tol[tl])
    res["slots"][tl, :kk] = slots_np[lv]
    res["alpha"][tl, :kk] = alpha_np[lv]
    res["passes"][tl] += 1
    res["iterations"][tl] += backend.to_numpy(its).astype(np.int64)[lv]
    live[lv[done]] = False
    if not live.any():
      break
    rp = (w * (xl - r)).sum(1)  # <r, p>: atoms scoring above it improve the objective.
    ok = np.zeros((len(rows), m), bool)
    ok[lv] = np.logical_and(vals[:, :m] > rp[:, None], ~done[:, None])
    new_idx = np.zeros((len(rows), m), np.int64)
    new_idx[lv] = idx[:, :m]
    if cfg.compact and len(rows) > pricing.MIN_ROWS and _SHRINK * live.sum() <= len(rows):
      # Before inserting, so insertion runs on the smaller state.
      size = max(pricing.MIN_ROWS, len(rows) // _SHRINK)
      while size // _SHRINK >= max(pricing.MIN_ROWS, live.sum()):
        size //= _SHRINK
      keep = np.nonzero(live)[0]
      sel = np.concatenate([keep, np.full(size - len(keep), keep[0])])
      sel_dev = backend.to_device(sel.astype(np.int32))
      slots, gram, alpha, x_dev = (kernels.take_rows(v, sel_dev)
                                   for v in (slots, gram, alpha, x_dev))
      vecs = gram if cfg.gram_state else kernels.take_rows(vecs, sel_dev)
      rows = rows[sel]
      live = np.arange(size) < len(keep)
      ok, new_idx = ok[sel] & live[:, None], new_idx[sel]
      slots_np, alpha_np = slots_np[sel], alpha_np[sel]
    if kk < k:
      free = np.logical_or(slots_np < 0, alpha_np <= 0).sum(1)
      if np.any(np.logical_and(live, free < ok.sum(1))):  # Some query's new atoms do not fit.
        grow = min(k, 2 * kk) - kk
        slots = backend.to_device(np.pad(slots_np.astype(np.int32), ((0, 0), (0, grow)),
                                         constant_values=-1))
        gram = backend.to_device(np.pad(backend.to_numpy(gram), ((0, 0), (0, grow), (0, grow))))
        alpha = backend.to_device(np.pad(alpha_np.astype(dt), ((0, 0), (0, grow))))
        kk += grow
    if cfg.gram_state:
      slots, gram = insert(slots, gram, alpha, new_idx, ok, x_dev)
      vecs = gram
    else:
      slots, vecs, gram = insert(slots, vecs, gram, alpha,
                                 backend.to_device(new_idx.astype(np.int32)),
                                 backend.to_device(a_c[np.maximum(new_idx, 0)]),
                                 backend.to_device(ok))
  res["lower_bound"] = np.maximum(best_lb, 0.0)

  # The reported interval: upper bound from the returned weights, exactly, in float64.
  al = np.maximum(res["alpha"], 0.0)
  al /= al.sum(1, keepdims=True)
  res["alpha"] = al
  res["projection"] = certificate.combine_support(a, mu, res["slots"], al)
  ub = np.linalg.norm(xc - res["projection"], axis=1)
  res["upper_bound"] = ub
  res["lower_bound"] = np.minimum(res["lower_bound"], ub)  # Both valid: lb <= d* <= ub.
  res["rel_gap"] = np.where(ub > 0, (ub - res["lower_bound"]) / np.maximum(ub, 1e-300), 0.0)
  res["converged"] = np.logical_or(res["rel_gap"] <= cfg.rel_tol, ub <= abs_tol)
  return res


_PRESOLVE_DIM = 64  # Up to this dimension every active query is polished before each pass.
_SHRINK = 4  # The working view is compacted to 1/_SHRINK its rows when that many are live.
_MAX_EXACT_ROWS = 64  # Queries per pass that may get a float64 pass over all points.


def _polish(a, mu, xc, slots, alpha, r, ub, rows) -> bool:
  """Exact float64 NNLS on the working sets of `rows` (near or inside the hull).

  Solves min |V^T alpha - x| with alpha >= 0 and sum(alpha) = 1 (a heavily weighted row of ones
  enforces the sum; the weights are then renormalized) over each query's working-set points V;
  where that beats the Frank-Wolfe iterate, alpha, r and ub are updated in place. A query whose
  working set already contains it in its hull is thereby certified inside at once, instead of
  after thousands of Frank-Wolfe steps (low-dimensional spaces). Returns whether any changed.
  """
  from scipy.optimize import nnls  # pylint: disable=import-outside-toplevel
  changed = False
  for i in rows:
    valid = slots[i] >= 0
    v = a[slots[i][valid]].astype(np.float64) - mu          # (k, d)
    scale = max(float(np.abs(v).max()), float(np.abs(xc[i]).max()), 1e-30)
    weight = 1e3 * scale
    mat = np.vstack([v.T, np.full((1, len(v)), weight)])
    rhs = np.concatenate([xc[i], [weight]])
    try:
      sol, _ = nnls(mat, rhs, maxiter=50 * mat.shape[1])
    except RuntimeError:  # Iteration limit: keep the Frank-Wolfe iterate.
      continue
    if sol.sum() <= 0:
      continue
    sol /= sol.sum()
    resid = xc[i] - sol @ v
    norm = float(np.linalg.norm(resid))
    if norm < ub[i]:
      alpha[i] = 0.0
      alpha[i, np.nonzero(valid)[0]] = sol
      r[i], ub[i] = resid, norm
      changed = True
  return changed


class _GramInserter:
  """Calls `kernels.insert_gram` with the point table and row maps (device A, or host rows)."""

  def __init__(self, fn, a_c: np.ndarray, table):
    self.fn, self.a_c, self.table = fn, a_c, table

  def __call__(self, slots, gram, alpha, idx: np.ndarray, ok: np.ndarray, x_dev):
    slots_np = backend.to_numpy(slots).astype(np.int64)
    idx = np.maximum(idx, 0)
    if self.table is not None:
      table, slot_rows, new_rows = self.table, np.maximum(slots_np, 0), idx
    else:  # Streaming: only the rows this call reads.
      uniq = np.unique(np.concatenate([np.maximum(slots_np, 0).ravel(), idx.ravel()]))
      table = backend.to_device(self.a_c[uniq])
      slot_rows = np.searchsorted(uniq, np.maximum(slots_np, 0))
      new_rows = np.searchsorted(uniq, idx)
    slots, gram, _ = self.fn(slots, gram, alpha, backend.to_device(idx.astype(np.int32)),
                             backend.to_device(ok), table,
                             backend.to_device(slot_rows.astype(np.int32)),
                             backend.to_device(new_rows.astype(np.int32)), x_dev)
    return slots, gram


class _Outputs:
  """Per-query result buffers, filled batch by batch."""

  def __init__(self, q: int, d: int):
    self.q, self.d = q, d
    self.parts = []
    self.outside = np.zeros(q, bool)
    self.converged = np.ones(q, bool)
    self.passes = np.zeros(q)

  def put(self, rows: slice, res: dict) -> None:
    self.parts.append(res)
    self.outside[rows] = res["lower_bound"] > 0
    self.converged[rows] = res["converged"]
    self.passes[rows] = res["passes"]

  def result(self, mu: np.ndarray, e: int, rel_tol: float) -> HullResult:
    """Assembles the batches' normalised results, scaled back by 2^e (exact) and shifted by mu."""
    def cat(key, shape, dtype):
      if not self.parts:
        return np.zeros(shape, dtype)
      return np.concatenate([p[key] for p in self.parts]).astype(dtype)

    def back(v):  # Exact (a power of two) unless the result leaves the normal float64 range.
      return np.ldexp(v, e)
    q, d = self.q, self.d
    alpha = cat("alpha", (q, 1), np.float64)
    slots = cat("slots", (q, 1), np.int64)
    order = np.argsort(-alpha, axis=1, kind="stable")
    alpha = np.take_along_axis(alpha, order, axis=1)
    slots = np.take_along_axis(slots, order, axis=1)
    nnz = (alpha > 0).sum(1)
    width = max(int(nnz.max()) if q else 1, 1)
    alpha, slots = alpha[:, :width], slots[:, :width]
    slots = np.where(alpha > 0, slots, -1)
    ub = back(cat("upper_bound", (q,), np.float64))
    lb = _certified_lower(back(cat("lower_bound", (q,), np.float64)), ub)
    normal = cat("normal", (q, d), np.float64)
    tol = back(cat("abs_tol", (q,), np.float64))
    verdict = verdicts(lb, ub, tol)
    out = dict(
        distance=ub, lower_bound=lb, upper_bound=ub, rel_gap=cat("rel_gap", (q,), np.float64),
        outside=verdict == OUTSIDE, inside=verdict == INSIDE, verdict=verdict,
        converged=cat("converged", (q,), bool),
        projection=back(cat("projection", (q, d), np.float64)) + mu, support=slots, weights=alpha,
        nnz=nnz, nearest_index=cat("nearest_index", (q,), np.int64),
        nearest_distance=back(cat("nearest_distance", (q,), np.float64)),
        hyperplane_normal=normal,
        hyperplane_offset=back(cat("offset", (q,), np.float64)) + normal @ mu,
        abs_tol=tol, passes=cat("passes", (q,), np.int64),
        iterations=cat("iterations", (q,), np.int64), rel_tol=rel_tol)
    for key in ("distance", "lower_bound", "weights", "projection", "nearest_distance",
                "hyperplane_normal", "hyperplane_offset"):
      if not np.all(np.isfinite(out[key])):
        raise HullScaleError(f"the solver produced non-finite {key.replace('_', ' ')} "
                             f"(scale 2^{e}); rescale the data towards unit norm and retry")
    return HullResult(**out)


def _report_unconverged(c: dict, max_passes: int, what: str = "queries") -> None:
  """One warning line when some of the solve's rows (`HullResult.counts()`) did not converge."""
  if c["unconverged"] or c["undetermined"]:
    logging.warning("hull solver: %d of %d %s not converged within max_passes=%d "
                    "(verdicts: %d outside, %d inside, %d undetermined)", c["unconverged"],
                    c["outside"] + c["inside"] + c["undetermined"], what, max_passes,
                    c["outside"], c["inside"], c["undetermined"])
