"""Hull distances by accelerated projected gradient on all n weights, in one XLA program per batch.

The specified "TF-native batched projected-gradient" method (issue 17), beside column generation
(`solver.py`). For B queries x (B, d) and points A (n, d), centred and scaled as in `solver.py`:

  min_alpha 1/2 |A^T alpha - x|^2  over alpha (B, n) on the simplex,

by FISTA (Beck-Teboulle) with gradient restart (O'Donoghue-Candes): y = alpha + beta (alpha -
alpha_prev), alpha <- P(y - grad(y) / L), momentum reset where <y - alpha_new, alpha_new - alpha>
> 0. P is the exact sort-based Euclidean projection onto the simplex (Duchi et al. 2008); L =
sigma_max(A_centred)^2 from a power iteration (centring is the "centring trick": iterates move
in {1^T v = 0}, where A and A - 1 mu^T act alike). Every `check_every` iterations the gradient at
the iterate, G = (x - A^T alpha) A^T, gives the Frank-Wolfe gap g = max_i G_i - <alpha, G>, which
stops a query (g <= target |r|^2, or |r| <= abs_tol / 2), and screens points: by 1-strong
convexity of 1/2 |p - x|^2 in p, |r - r*| <= rho = sqrt(2 g), and optimal weights sit only on
argmax_i <a_i, r*>; so point i (with zero weight) never enters an optimal support when
G_s - G_i > rho (|a_i| + |a_s|) (s the best point, centred norms), plus a rounding slack. Screened
points are masked out of the projection for the rest of the program (fraction reported).

The whole iteration is one `while_loop` in one compiled program (`tf.function(jit_compile=True)`
or `jax.jit`), with no host synchronisation inside. After it, the SAME certification code as
column generation runs on the host: one pricing pass over all n points (`pricing.Pricer`), the
float64 rescoring / Higham rounding allowances (`certificate.pass_lower_bound`), the float64
upper bound from the returned weights (`certificate.combine_support`) and the
verdicts (`solver._Outputs.result`). So screening or float32 drift can cost iterations, never a
wrong interval. A query the certificate does not settle gets another program call (a "pass"),
with a halved gap target, up to max_passes.

Memory: A stays on the device ((n, d) in the compute dtype) with a few (B, n) arrays. Points
beyond `device_bytes` stay on the host in equal chunks (two fit `device_bytes`) and every product
with A streams them, one compiled call per chunk, inside a host loop over the same iteration
(`_StreamedProgram`; the power iteration for L runs on the host there): the same certificate
and results, at a host round trip per chunk and product (so `auto` never picks it). Under a
tf.distribute strategy the batch's queries are sharded across replicas (each holds A; streaming
there raises a one-line error).
"""

import collections
import dataclasses
import math
from typing import Optional

from absl import logging
import keras
from keras import ops
import numpy as np

from tfhull.errors import UserError
from tfhull.hull import backend
from tfhull.hull import certificate
from tfhull.hull import pricing
from tfhull.hull import solver

# Python-level trace counts of the compiled programs (a trace runs the Python body once).
TRACES = collections.Counter()

METHODS = ("column_generation", "projected_gradient", "auto")


class DeviceMemoryError(UserError, ValueError):
  """The points exceed the device budget of the projected-gradient method; one line."""


@dataclasses.dataclass(frozen=True)
class PGConfig:
  """Knobs of the projected-gradient method."""
  rel_tol: float = 1e-4
  abs_tol: Optional[float] = None
  max_passes: int = 40             # Full passes over the points per batch (nearest neighbour,
                                   # then one certificate pass after each program call).
  batch_size: int = 256
  iterations_per_pass: int = 2000  # FISTA iterations per program call (bounded while_loop).
  check_every: int = 8             # Iterations between gradient certificates (+1 GEMM each).
  screening: bool = True           # Gap-safe screening of points never in the support.
  power_iterations: int = 64       # For the step size 1 / L.
  certify_candidates: int = 64     # As in SolverConfig (top-m list rescored in float64).
  chunk_size: int = 16384          # Rows per matmul of the certificate passes.
  device_bytes: int = 4 << 30      # Largest A (bytes) held on the device.
  exact_rescore: bool = True
  polish: bool = True              # Exact float64 NNLS on the support of near/inside queries
                                   # after each pass (as column generation does).
  dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class PGStats:
  """What the projected-gradient solve did (beside HullResult's passes and iterations)."""
  screened_fraction: np.ndarray  # (q,) fraction of the n points screened out at the end.
  screened: np.ndarray           # (q, n) bool, the points screened out at the end.
  lipschitz: float               # L of the normalised problem (power iteration).
  programs: int                  # Compiled-program calls (one per batch per pass).
  streamed_chunks: int = 0       # Host chunks A was streamed in (0: A resident on the device).


# Options only the projected-gradient method knows (dropped when "auto" picks the other).
PG_ONLY = frozenset(f.name for f in dataclasses.fields(PGConfig)) - frozenset(
    f.name for f in dataclasses.fields(solver.SolverConfig))


def power_iteration(a, valid, *, iterations: int):
  """Largest eigenvalue of A^T A (A (N, d), rows masked by `valid`), by power iteration; ()."""
  TRACES["power_iteration"] += 1
  a = a * ops.cast(valid, a.dtype)[:, None]
  d = a.shape[1]
  v0 = ops.ones((d,), a.dtype) + ops.cast(ops.arange(d), a.dtype) / d  # Fixed, generic start.

  def body(_, v):
    u = ops.matmul(ops.transpose(a), ops.matmul(a, v))
    return u / ops.maximum(ops.sqrt(ops.sum(u * u)), 1e-30)
  v = ops.fori_loop(0, iterations, body, v0 / ops.sqrt(ops.sum(v0 * v0)))
  av = ops.matmul(a, v)
  return ops.sum(av * av) / ops.maximum(ops.sum(v * v), 1e-30)


def project_simplex(v, keep):
  """Euclidean projection of each row of v (B, N) onto the simplex over the entries `keep`
  (B, N) bool (the rest get 0), sort-based (Duchi et al. 2008), exact up to rounding."""
  n = v.shape[1]
  neg = ops.cast(-3.0e38, v.dtype)
  vmax = ops.max(ops.where(keep, v, neg), axis=1, keepdims=True)
  # Masked entries go 2 below the largest kept one: under the threshold (>= vmax - 1), so they
  # get weight 0 and leave it unchanged, and no cumulative sum overflows.
  v = ops.where(keep, v, vmax - 2.0)
  u = -ops.sort(-v, axis=1)
  css = ops.cumsum(u, axis=1) - 1.0
  ind = ops.cast(ops.arange(1, n + 1), v.dtype)[None, :]
  count = ops.sum(ops.cast(u - css / ind > 0, "int32"), axis=1, keepdims=True)
  count = ops.maximum(count, 1)
  theta = ops.take_along_axis(css, count - 1, axis=1) / ops.cast(count, v.dtype)
  return ops.where(keep, ops.maximum(v - theta, 0.0), ops.zeros_like(v))


def drift(n: int, max_norm, dtype):
  """Typical rounding error of A^T alpha over n rows of norm <= max_norm (screening slack)."""
  u = 0.5 * float(np.finfo(keras.backend.standardize_dtype(dtype)).eps)
  return ops.cast(math.sqrt(n) * u, dtype) * max_norm


def certify(x, alpha, p, g, keep, active, a_norm, abs_tol2, target, slack, drift_, *,
            screening: bool):
  """The certificate at the iterate (alpha, p = alpha A) from its gradient scores g = (x - p) A^T
  (B, N): done (B,) (gap <= target |r|^2 or |r|^2 <= abs_tol2) and keep (B, N) with the points
  of active queries screened out (gap-safe rule, module docstring)."""
  neg = ops.cast(-3.0e38, x.dtype)
  r = x - p
  gk = ops.where(keep, g, neg)
  gmax = ops.max(gk, axis=1)
  gap = gmax - ops.sum(alpha * ops.where(keep, g, ops.zeros_like(g)), axis=1)
  r2 = ops.sum(r * r, axis=1)
  done = ops.logical_or(gap <= target * r2, r2 <= abs_tol2)
  if screening:
    tol = slack * ops.sqrt(r2)
    rho = ops.sqrt(2.0 * (ops.maximum(gap, 0.0) + 3.0 * tol)) + drift_
    s = ops.argmax(gk, axis=1)
    norm_s = ops.take(a_norm, s, axis=0)
    drop = (gmax[:, None] - g) > (rho[:, None] * (a_norm[None, :] + norm_s[:, None])
                                  + 2.0 * tol[:, None])
    drop = ops.logical_and(drop, alpha <= 0)
    keep = ops.logical_and(keep, ops.logical_not(ops.logical_and(drop, active[:, None])))
  return done, keep


def momentum(x, alpha, alpha_prev, p, p_prev, t):
  """FISTA's extrapolation: t_new (B,), y (B, N), and v = y A - x (B, d) (the gradient of the
  objective at y is v A^T)."""
  t_new = 0.5 * (1.0 + ops.sqrt(1.0 + 4.0 * t * t))
  beta = ((t - 1.0) / t_new)[:, None]
  y = alpha + beta * (alpha - alpha_prev)
  p_y = p + beta * (p - p_prev)
  return t_new, y, p_y - x


def gradient_step(y, grad, keep, inv_l):
  """The projected step P(y - grad / L) over the kept points, (B, N)."""
  return project_simplex(y - inv_l * grad, keep)


def accept(alpha, alpha_prev, p, p_prev, t, t_new, y, a_new, p_new, active, iters):
  """The active queries take the step (a_new, p_new = a_new A); momentum reset (gradient restart)
  where <y - a_new, a_new - alpha> > 0."""
  restart = ops.sum((y - a_new) * (a_new - alpha), axis=1) > 0
  act = active[:, None]
  alpha_prev = ops.where(act, ops.where(restart[:, None], a_new, alpha), alpha_prev)
  p_prev = ops.where(act, ops.where(restart[:, None], p_new, p), p_prev)
  alpha = ops.where(act, a_new, alpha)
  p = ops.where(act, p_new, p)
  t = ops.where(active, ops.where(restart, ops.ones_like(t), t_new), t)
  iters = iters + ops.cast(active, "int32")
  return alpha, alpha_prev, p, p_prev, t, iters


def fista_loop(a, a_norm, x, alpha, keep, active, abs_tol2, target, inv_l, slack, *,
               max_iterations: int, check_every: int, screening: bool):
  """FISTA with gradient restart and periodic certificates/screening, one bounded while_loop.

  Args:
    a: (N, d) centred points (padding rows zero). a_norm: (N,) their norms.
    x: (B, d) centred queries. alpha: (B, N) feasible start. keep: (B, N) bool, unscreened
      valid points. active: (B,) bool, queries to solve. abs_tol2: (B,) squared inside
      tolerance. target: (B,) gap target relative to |r|^2. inv_l: () step 1 / L.
    slack: (B,) rounding allowance per unit |r| of one matmul score.

  Returns:
    alpha (B, N), keep (B, N), active (B,) (still unsettled), iterations (B,) int32.
  """
  TRACES["fista_loop"] += 1
  at = ops.transpose(a)
  drift_ = drift(a.shape[0], ops.max(a_norm), x.dtype)

  def certificate(alpha, p, keep, active):
    return certify(x, alpha, p, ops.matmul(x - p, at), keep, active, a_norm, abs_tol2, target,
                   slack, drift_, screening=screening)

  def cond(it, alpha, alpha_prev, p, p_prev, t, keep, active, iters):
    return ops.logical_and(it < max_iterations, ops.any(active))

  def body(it, alpha, alpha_prev, p, p_prev, t, keep, active, iters):
    t_new, y, v = momentum(x, alpha, alpha_prev, p, p_prev, t)
    a_new = gradient_step(y, ops.matmul(v, at), keep, inv_l)
    alpha, alpha_prev, p, p_prev, t, iters = accept(
        alpha, alpha_prev, p, p_prev, t, t_new, y, a_new, ops.matmul(a_new, a), active, iters)
    it = it + 1

    def check():
      done, new_keep = certificate(alpha, p, keep, active)
      return ops.logical_and(active, ops.logical_not(done)), new_keep
    active, keep = ops.cond(it % check_every == 0, check, lambda: (active, keep))
    return it, alpha, alpha_prev, p, p_prev, t, keep, active, iters

  p = ops.matmul(alpha, a)
  t = ops.ones(alpha.shape[:1], x.dtype)
  iters = ops.zeros(alpha.shape[:1], "int32")
  done, keep = certificate(alpha, p, keep, active)
  active = ops.logical_and(active, ops.logical_not(done))
  out = ops.while_loop(cond, body, (ops.convert_to_tensor(0), alpha, alpha, p, p, t, keep,
                                    active, iters))
  _, alpha, _, _, _, _, keep, active, iters = out
  return alpha, keep, active, iters


def _scores_into(v, chunk, start, out):
  return ops.slice_update(out, (0, start), ops.matmul(v, ops.transpose(chunk)))


def _combine_add(w, chunk, start, acc):
  return acc + ops.matmul(ops.slice(w, (0, start), (w.shape[0], chunk.shape[0])), chunk)


def chunk_scores(v, chunk, start, out):
  """out (B, N) with columns [start, start + c) set to v chunk^T: v (B, d), chunk (c, d)."""
  TRACES["chunk_scores"] += 1
  return _scores_into(v, chunk, start, out)


def chunk_scores_step(v, chunk, start, out, y, keep, inv_l):
  """The last chunk's scores, then the projected step on the full gradient: a_new (B, N)."""
  TRACES["chunk_scores_step"] += 1
  return gradient_step(y, _scores_into(v, chunk, start, out), keep, inv_l)


def chunk_combine(w, chunk, start, acc):
  """acc + w[:, start:start + c] chunk: w (B, N), chunk (c, d), acc (B, d)."""
  TRACES["chunk_combine"] += 1
  return _combine_add(w, chunk, start, acc)


def chunk_combine_accept(a_new, chunk, start, acc, x, alpha, alpha_prev, p, p_prev, t, t_new, y,
                         active, iters):
  """The last chunk of p_new = a_new A, `accept`, and the next iteration's `momentum`:
  (alpha, alpha_prev, p, p_prev, t, iters, t_new, y, v)."""
  TRACES["chunk_combine_accept"] += 1
  state = accept(alpha, alpha_prev, p, p_prev, t, t_new, y, a_new,
                 _combine_add(a_new, chunk, start, acc), active, iters)
  return state + momentum(x, *state[:5])


def device_kind() -> str:
  """'tpu', 'gpu' or 'cpu': the accelerator the current Keras backend computes on."""
  if backend.name() == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    return jax.default_backend()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for kind in ("TPU", "GPU"):
    if tf.config.list_logical_devices(kind):
      return kind.lower()
  return "cpu"


# Below this dimension `auto` never picks projected gradient (64-d: no convergence measured).


def choose_method(n: int, d: int, dtype: str = "float32", device_bytes: int = 4 << 30,
                  kind: Optional[str] = None) -> str:
  """The method `method="auto"` runs (docs/solver-methods.md has the measurements behind it).

  Projected gradient only where a measurement shows it winning, which so far is nowhere:
  column generation needs far fewer GEMMs and less CPU time at every size benchmarked (d = 784
  and 64, n = 2k to 60k), and projected gradient did not settle most queries at d = 784,
  n = 10,000 (6 of 8 stalled above rel_tol in float32) nor at d = 64 (iteration counts and
  float32 stalls do not depend on the device). A TPU measurement (`benchmarks/gpu_check.sh
  --methods=...` under JAX) that reverses this would add its (kind, d, n) range here.
  """
  del n, d, dtype, device_bytes, kind  # No measured range where projected gradient wins yet.
  return "column_generation"


def resolve_method(method: str, points, kwargs: dict) -> str:
  """`method` with "auto" resolved (`choose_method`) for these points and options."""
  if method not in METHODS:
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
  if method != "auto":
    return method
  shape = np.shape(points)
  if len(shape) != 2:
    return "column_generation"  # Its input checks name the problem.
  return choose_method(shape[0], shape[1], kwargs.get("dtype", "float32"),
                       kwargs.get("device_bytes", PGConfig.device_bytes))


def project_onto_hull_pg(points, queries, *, strategy=None, **kwargs):
  """`solver.project_onto_hull(..., method="projected_gradient")`: the same arguments (column-
  generation-only options are ignored) and the same HullResult."""
  return solve(points, queries, strategy=strategy, **kwargs)[0]


def solve(points, queries, *, strategy=None, **kwargs):
  """Projected-gradient hull distances: (HullResult, PGStats). kwargs: PGConfig fields (and
  SolverConfig fields, ignored)."""
  fields = {f.name for f in dataclasses.fields(PGConfig)}
  other = {f.name for f in dataclasses.fields(solver.SolverConfig)}
  unknown = set(kwargs) - fields - other
  if unknown:
    raise TypeError(f"unknown solver option(s) {sorted(unknown)}")
  cfg = PGConfig(**{k: v for k, v in kwargs.items() if k in fields})
  _check(cfg)
  backend.check_strategy(strategy)
  a = solver._as_array(points, "points")  # pylint: disable=protected-access
  x = solver._as_array(queries, "queries")  # pylint: disable=protected-access
  if a.shape[0] == 0:
    raise ValueError("points is empty: the hull of no points is undefined")
  if x.shape[1] != a.shape[1]:
    raise ValueError(f"queries have {x.shape[1]} dimensions but points have {a.shape[1]}; "
                     "use the same space (and flattening) for both")
  need = _padded(a.shape[0]) * a.shape[1] * np.dtype(cfg.dtype).itemsize
  if need > cfg.device_bytes and strategy is not None:
    raise DeviceMemoryError(f"method='projected_gradient' streams points beyond device_bytes "
                            f"({need:,} > {cfg.device_bytes:,}) only without a strategy; use "
                            "method='column_generation', strategy=None or a larger device_bytes")
  with backend.full_precision_matmuls():
    res, stats = _solve(a, x, cfg, strategy)
  c = res.counts()
  if c["unconverged"] or c["undetermined"]:
    logging.warning("hull solver (projected gradient): %d of %d queries not converged within "
                    "max_passes=%d", c["unconverged"], res.distance.size, cfg.max_passes)
  return res, stats


def _check(cfg: PGConfig) -> None:
  if not 0 < cfg.rel_tol < 1:
    raise ValueError(f"rel_tol must be in (0, 1), got {cfg.rel_tol}")
  if cfg.abs_tol is not None and cfg.abs_tol < 0:
    raise ValueError(f"abs_tol must be >= 0, got {cfg.abs_tol}")
  for name in ("max_passes", "batch_size", "iterations_per_pass", "check_every",
               "power_iterations", "certify_candidates", "chunk_size"):
    if getattr(cfg, name) < 1:
      raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
  if cfg.max_passes < 2:
    raise ValueError(f"max_passes must be >= 2 (nearest neighbour + a certificate), got "
                     f"{cfg.max_passes}")
  if cfg.dtype not in ("float32", "float64"):
    raise ValueError(f"dtype must be float32 or float64, got {cfg.dtype!r}")


_POLISH_BELOW = 0.05  # Queries with |r| below this fraction of d_NN get the NNLS polish.


def _padded(n: int) -> int:
  return -(-n // 128) * 128


class _Program:
  """The compiled FISTA program, on one device or with the batch sharded across replicas."""

  def __init__(self, cfg: PGConfig, strategy):
    self.fn = backend.compile_fn(fista_loop, max_iterations=cfg.iterations_per_pass,
                                 check_every=cfg.check_every, screening=cfg.screening)
    self.strategy = strategy
    self.calls = 0
    if strategy is not None:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top

      def run(a, a_norm, inv_l, shards):
        out = strategy.run(lambda s: self.fn(a, a_norm, *s[:-1], inv_l, s[-1]), args=(shards,))
        return tuple(strategy.experimental_local_results(o) for o in out)
      self._run = tf.function(run)

  def __call__(self, a, a_norm, x, alpha, keep, active, abs_tol2, target, inv_l, slack):
    self.calls += 1
    if self.strategy is None:
      return self.fn(a, a_norm, x, alpha, keep, active, abs_tol2, target, inv_l, slack)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    reps = self.strategy.num_replicas_in_sync
    per = x.shape[0] // reps
    host = [backend.to_numpy(v) for v in (x, alpha, keep, active, abs_tol2, target, slack)]

    def value_fn(ctx):
      i = ctx.replica_id_in_sync_group
      return tuple(tf.constant(v[i * per:(i + 1) * per]) for v in host)
    shards = self.strategy.experimental_distribute_values_from_function(value_fn)
    outs = self._run(a, a_norm, inv_l, shards)
    return tuple(np.concatenate([backend.to_numpy(t) for t in o], axis=0) for o in outs)


class _StreamedProgram:
  """`fista_loop`'s iteration with A streamed from the host (points beyond `device_bytes`).

  The (B, N) weights stay on the device; A is a list of K equal host chunks (c, d). Each product
  with A (the gradient scores, p = alpha A, the certificate) is a host loop over the chunks, one
  compiled call per chunk (one program per shape: the offset is a tensor); the rest of the
  iteration (`momentum`, `gradient_step`, `accept`, `certify`, as in the resident loop) rides
  with the last chunk's call, so an iteration is 2K calls. The iterates differ from the resident
  loop's only by the summation order of alpha A across chunks.
  """

  def __init__(self, cfg: PGConfig, npad: int, chunk: int):
    self.cfg = cfg
    self.npad = npad
    self.starts = [backend.to_device(np.int32(s)) for s in range(0, npad, chunk)]
    self.fns = {f.__name__: backend.compile_fn(f) for f in (
        chunk_scores, chunk_scores_step, chunk_combine, chunk_combine_accept, momentum)}
    self.certify_fn = backend.compile_fn(certify, screening=cfg.screening)
    self.calls = 0

  def __call__(self, chunks, a_norm, x, alpha, keep, active, abs_tol2, target, inv_l, slack):
    """As `fista_loop(a, ...)` with a the host chunks stacked: (alpha, keep, active, iters)."""
    self.calls += 1
    cfg, fns, dt = self.cfg, self.fns, self.cfg.dtype
    b, d = x.shape
    zeros_n = backend.to_device(np.zeros((b, self.npad), dt))
    zeros_d = backend.to_device(np.zeros((b, d), dt))
    parts = list(zip(self.starts, chunks))
    drift_ = backend.to_device(np.asarray(backend.to_numpy(
        drift(self.npad, ops.max(a_norm), dt)), dt))

    def scores(v, last_fn=None, *last_args):
      out = zeros_n
      for start, chunk in parts[:-1]:
        out = fns["chunk_scores"](v, backend.to_device(chunk), start, out)
      start, chunk = parts[-1]
      if last_fn is None:
        return fns["chunk_scores"](v, backend.to_device(chunk), start, out)
      return last_fn(v, backend.to_device(chunk), start, out, *last_args)

    def combine(w, parts_=parts):
      acc = zeros_d
      for start, chunk in parts_:
        acc = fns["chunk_combine"](w, backend.to_device(chunk), start, acc)
      return acc

    def check(alpha, p, keep, active):
      done, keep = self.certify_fn(x, alpha, p, scores(ops.subtract(x, p)), keep, active,
                                   a_norm, abs_tol2, target, slack, drift_)
      active = ops.logical_and(active, ops.logical_not(done))
      return keep, active, bool(backend.to_numpy(ops.any(active)))

    p = combine(alpha)
    t = backend.to_device(np.ones((b,), dt))
    iters = backend.to_device(np.zeros((b,), np.int32))
    keep, active, any_active = check(alpha, p, keep, active)
    alpha_prev, p_prev = alpha, p
    t_new, y, v = fns["momentum"](x, alpha, alpha_prev, p, p_prev, t)
    last_start, last_chunk = parts[-1]
    it = 0
    # `active` changes only at certificates, so the host reads it back only there.
    while it < cfg.iterations_per_pass and any_active:
      a_new = scores(v, fns["chunk_scores_step"], y, keep, inv_l)
      acc = combine(a_new, parts[:-1])
      (alpha, alpha_prev, p, p_prev, t, iters, t_new, y, v) = fns["chunk_combine_accept"](
          a_new, backend.to_device(last_chunk), last_start, acc, x, alpha, alpha_prev, p, p_prev,
          t, t_new, y, active, iters)
      it += 1
      if it % cfg.check_every == 0:
        keep, active, any_active = check(alpha, p, keep, active)
    return alpha, keep, active, iters


def _stream_layout(n: int, d: int, cfg: PGConfig):
  """(chunk rows, chunks) for streaming: equal chunks of at most chunk_size rows, two of which
  fit device_bytes (at least 8 rows), a multiple of 128 from 1,024 rows, else of 8."""
  rows = min(cfg.chunk_size, cfg.device_bytes // (2 * d * np.dtype(cfg.dtype).itemsize))
  grain = 128 if rows >= 1024 else 8
  rows = max(grain, rows // grain * grain)
  k = -(-n // rows)
  chunk = -(-(-(-n // k)) // grain) * grain  # <= rows: rows is a multiple of grain.
  return chunk, -(-n // chunk)


def _power_host(chunks, iterations: int, dtype: str) -> float:
  """`power_iteration` on the host, chunk by chunk in `dtype` (A is there when streamed: 64
  passes over it here instead of 64 transfers to the device); ()."""
  d = chunks[0].shape[1]
  v = (np.ones(d) + np.arange(d) / d).astype(dtype)
  v /= np.sqrt(np.sum(v * v))
  for _ in range(iterations):
    u = sum(c.T @ (c @ v) for c in chunks)
    v = (u / max(float(np.sqrt(np.sum(u * u))), 1e-30)).astype(dtype)
  return float(sum(np.sum((c @ v) ** 2) for c in chunks)) / max(float(np.sum(v * v)), 1e-30)


def _solve(a: np.ndarray, x: np.ndarray, cfg: PGConfig, strategy):
  n, d = a.shape
  q = x.shape[0]
  dt = cfg.dtype
  mu = a.mean(axis=0, dtype=np.float64)
  e = solver._scale_exponent(a, mu, x, dt)  # pylint: disable=protected-access
  view = solver._Centred(a, mu, e)  # pylint: disable=protected-access
  stream = _padded(n) * d * np.dtype(dt).itemsize > cfg.device_bytes
  if stream:
    chunk, n_chunks = _stream_layout(n, d, cfg)
    npad = chunk * n_chunks
  else:
    npad = _padded(n)
  a_c = np.zeros((npad, d), dtype=dt)
  for s in range(0, n, 65536):
    a_c[s:min(s + 65536, n)] = view[s:s + 65536]
  a_norm = np.sqrt((a_c.astype(np.float64) ** 2).sum(1))
  max_norm_a = float(a_norm.max())
  valid = np.arange(npad) < n
  if cfg.abs_tol is not None:
    cfg = dataclasses.replace(cfg, abs_tol=float(np.ldexp(cfg.abs_tol, -e)))
  pricer = pricing.Pricer(a_c[:n], cfg, min(cfg.certify_candidates, n), strategy)
  norm_dev = backend.to_device(a_norm.astype(dt))
  if stream:  # A stays on the host: `a_dev` is its chunks, streamed by the program.
    a_dev = [a_c[s:s + chunk] for s in range(0, npad, chunk)]
    lam = _power_host(a_dev, cfg.power_iterations, dt)
    program = _StreamedProgram(cfg, npad, chunk)
  else:
    a_dev = backend.to_device(a_c)
    lam = float(backend.to_numpy(backend.compile_fn(power_iteration,
                                                    iterations=cfg.power_iterations)(
                                                        a_dev, backend.to_device(valid))))
    program = _Program(cfg, strategy)
  fro = float((a_norm ** 2).sum())
  lip = min(max(1.05 * lam, 1e-30), fro)  # Power iteration underestimates; |A|_F^2 >= L.
  inv_l = backend.to_device(np.asarray(1.0 / lip, dt))
  reps = strategy.num_replicas_in_sync if strategy is not None else 1
  b = max(1, min(cfg.batch_size, q))
  b = -(-b // reps) * reps

  out = solver._Outputs(q, d)  # pylint: disable=protected-access
  screened = np.zeros((q, n), bool)
  for start in range(0, q, b):
    rows = slice(start, min(start + b, q))
    nb = rows.stop - rows.start
    xb = np.zeros((b, d), np.float64)
    xb[:nb] = x[rows]
    xb[nb:] = x[rows][:1]
    real = np.arange(b) < nb
    res, frac = _solve_batch(view, np.ldexp(xb - mu, -e), real, a_dev, norm_dev, valid, pricer,
                             program, inv_l, cfg, max_norm_a)
    out.put(rows, {key: val[real] for key, val in res.items()})
    screened[rows] = frac[real]
  width = max(p["alpha"].shape[1] for p in out.parts) if out.parts else 1
  for p in out.parts:  # Common support width across batches.
    pad = width - p["alpha"].shape[1]
    p["alpha"] = np.pad(p["alpha"], ((0, 0), (0, pad)))
    p["slots"] = np.pad(p["slots"], ((0, 0), (0, pad)), constant_values=-1)
  result = out.result(mu, e, cfg.rel_tol)
  return result, PGStats(screened_fraction=screened.mean(1) if n else np.zeros(q),
                         screened=screened, lipschitz=lip, programs=program.calls,
                         streamed_chunks=len(a_dev) if stream else 0)


def _solve_batch(view, xc, real, a_dev, norm_dev, valid, pricer, program, inv_l, cfg,
                 max_norm_a):
  """One padded batch xc (B, d) (normalised, centred); per-query arrays and the (B, n) mask of
  screened points."""
  bsz, d = xc.shape
  n = view.shape[0]
  npad = valid.shape[0]
  dt = cfg.dtype
  zero_mu = np.zeros(d)
  eps = float(np.finfo(dt).eps)
  x32 = xc.astype(dt)
  norm_x = np.linalg.norm(xc, axis=1)
  bounds = certificate.RoundingBounds(d, dt, max_norm_a, norm_x)

  vals, idx = pricer(x32, nearest=True)
  nearest = idx[:, 0]
  d_nn = np.linalg.norm(xc - view[nearest], axis=1)
  floor = 10.0 * math.sqrt(d) * eps * (norm_x + max_norm_a)
  abs_tol = np.maximum(cfg.abs_tol if cfg.abs_tol is not None else 1e-4 * d_nn, floor)

  alpha = np.zeros((bsz, npad), dt)
  alpha[np.arange(bsz), nearest] = 1.0
  keep_all = np.broadcast_to(valid, (bsz, npad))
  keep = keep_all.copy()
  target = np.full(bsz, 0.5 * cfg.rel_tol, dt)
  abs_tol2 = ((0.5 * abs_tol) ** 2).astype(dt)
  slack = np.full(bsz, bounds.price, dt)
  x_dev = backend.to_device(x32)
  best_lb = np.full(bsz, -np.inf)
  res = {"lower_bound": np.zeros(bsz), "normal": np.zeros((bsz, d)), "offset": np.zeros(bsz),
         "passes": np.ones(bsz, np.int64), "iterations": np.zeros(bsz, np.int64),
         "nearest_index": nearest, "nearest_distance": d_nn, "abs_tol": abs_tol}
  live = real.copy()
  margin = 1.0 - 1e-3
  alpha_np = alpha.astype(np.float64)
  prev_gap = np.full(bsz, np.inf)
  # First pass: queries that come within _POLISH_BELOW d_NN stop there for the exact polish (the
  # device's inside radius); where that does not settle them, later passes iterate on.
  stop2 = np.maximum(abs_tol2, (_POLISH_BELOW * d_nn) ** 2).astype(dt) if cfg.polish else abs_tol2
  for _ in range(2, cfg.max_passes + 1):
    out = program(a_dev, norm_dev, x_dev, backend.to_device(alpha), backend.to_device(keep),
                  backend.to_device(live), backend.to_device(stop2),
                  backend.to_device(target), inv_l, backend.to_device(slack))
    alpha_dev, keep_dev, still, its = out
    alpha = backend.to_numpy(alpha_dev).astype(dt)
    keep = backend.to_numpy(keep_dev).astype(bool)
    res["iterations"] += np.where(live, backend.to_numpy(its).astype(np.int64), 0)
    alpha_np = np.maximum(alpha[:, :n].astype(np.float64), 0.0)
    alpha_np /= alpha_np.sum(1, keepdims=True)
    slots, weights = _sparse(alpha_np)
    r = xc - certificate.combine_support(view, zero_mu, slots, weights)
    ub = np.linalg.norm(r, axis=1)
    near = live & (ub <= _POLISH_BELOW * d_nn)
    if cfg.polish and near.any():
      # Near or inside the hull, the exact float64 NNLS on the iterate's support (column
      # generation's `_polish`) settles what FISTA's sublinear tail would take thousands of
      # iterations to: |r| down to abs_tol.
      if solver._polish(view, zero_mu, xc, slots, weights, r, ub,  # pylint: disable=protected-access
                        np.nonzero(near)[0]):
        alpha_np = np.zeros_like(alpha_np)
        np.add.at(alpha_np, (np.arange(bsz)[:, None], np.maximum(slots, 0)),
                  np.where(slots >= 0, weights, 0.0))
        alpha = alpha_np.astype(dt)
        alpha = np.pad(alpha, ((0, 0), (0, npad - n)))
    w = r.astype(dt).astype(np.float64)
    vals, idx = pricer(r.astype(dt), nearest=False)

    def rescore(lb_cand, live=live, ub=ub):
      ok = live & (ub - np.maximum(np.maximum(lb_cand, best_lb), 0.0) <= margin * cfg.rel_tol * ub)
      pick = np.nonzero(ok)[0][:64]
      sel = np.zeros(len(lb_cand), bool)
      sel[pick] = True
      return sel
    lb, top, rn = certificate.pass_lower_bound(
        view, zero_mu, xc, w, vals, idx, bounds, rescore if cfg.exact_rescore else None)
    safe = np.maximum(rn, 1e-300)
    better = live & (lb > best_lb)
    best_lb[better] = lb[better]
    res["normal"][better] = (w / safe[:, None])[better]
    res["offset"][better] = (top / safe)[better]
    res["passes"][live] += 1
    relgap = np.where(ub > 0, (ub - np.maximum(best_lb, 0.0)) / np.maximum(ub, 1e-300), 0.0)
    done = (relgap <= margin * cfg.rel_tol) | (ub <= margin * abs_tol)
    # Not settled although the device thought so: tighter target, screening restarted.
    target = np.where(live & ~done & ~backend.to_numpy(still).astype(bool),
                      0.5 * target, target).astype(dt)
    # A query whose certified gap did not shrink by a tenth over a whole pass has stalled (float32
    # rounding of the iterate, or a tail FISTA does not resolve): reported unconverged instead of
    # burning the remaining passes.
    stalled = (relgap > 0.9 * prev_gap) & ~done
    prev_gap = np.where(live, relgap, prev_gap)
    live = live & ~done & ~stalled
    stop2 = abs_tol2
    if not live.any():
      break
    keep = np.where(live[:, None], keep_all, keep)
  screened = ~keep[:, :n]
  slots, weights = _sparse(alpha_np)
  proj = certificate.combine_support(view, zero_mu, slots, weights)
  ub = np.linalg.norm(xc - proj, axis=1)
  lb = np.minimum(np.maximum(best_lb, 0.0), ub)
  rel_gap = np.where(ub > 0, (ub - lb) / np.maximum(ub, 1e-300), 0.0)
  res.update(slots=slots, alpha=weights, projection=proj, upper_bound=ub, lower_bound=lb,
             rel_gap=rel_gap, converged=(rel_gap <= cfg.rel_tol) | (ub <= abs_tol))
  return res, screened


def _sparse(alpha: np.ndarray):
  """(B, n) weights -> (slots, weights) (B, k), k the largest support, -1 / 0 padded."""
  nnz = (alpha > 0).sum(1)
  k = max(int(nnz.max()), 1)
  order = np.argsort(-alpha, axis=1, kind="stable")[:, :k]
  weights = np.take_along_axis(alpha, order, axis=1)
  slots = np.where(weights > 0, order, -1).astype(np.int64)
  return slots, weights
