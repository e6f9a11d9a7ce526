"""tfhull.hull.project_onto_hull against exact references, known geometry and invariants."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfhull import hull
from tfhull.hull import backend
from tfhull.hull import pricing
from tfhull.hull import reference
from tfhull.hull import solver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _structured(rng, n, d, rank=12):
  """Nonnegative low-rank 'image-like' points in [0, 1]."""
  basis = rng.random((rank, d)) ** 3
  x = rng.gamma(0.5, size=(n, rank)) @ basis
  x /= x.max(axis=1, keepdims=True)
  return np.clip(x + 0.03 * rng.standard_normal((n, d)), 0, 1).astype(np.float32)


def _check_invariants(points, queries, res, rel_tol=1e-4):
  q = len(queries)
  assert res.distance.shape == (q,) and res.projection.shape == queries.shape
  assert np.all(res.lower_bound >= 0)
  assert np.all(res.lower_bound <= res.upper_bound + 1e-12)
  # Weights on the simplex, indices valid, and they reproduce the projection.
  w = res.weights
  assert np.all(w >= 0)
  np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
  assert np.all((res.support >= 0) == (w > 0))
  assert res.support.max() < len(points)
  recon = np.einsum("qk,qkd->qd", w, points.astype(np.float64)[np.maximum(res.support, 0)])
  np.testing.assert_allclose(recon, res.projection, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(queries - res.projection, axis=1), res.distance,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(res.nnz, (w > 0).sum(1))
  assert np.all(res.converged)
  # Outside verdicts are certified, and the separating hyperplane really separates.
  out = res.outside
  assert np.all(res.lower_bound[out] > 0)
  assert np.all(res.rel_gap[out] <= rel_tol)
  sep = points.astype(np.float64) @ res.hyperplane_normal[out].T  # (n, q_out)
  assert np.all(sep <= res.hyperplane_offset[out][None, :] + 1e-6)
  assert np.all(np.einsum("qd,qd->q", queries[out], res.hyperplane_normal[out]) >
                res.hyperplane_offset[out])


@pytest.mark.parametrize("n,d,seed", [(300, 20, 0), (1000, 64, 1), (2000, 784, 2)])
def test_matches_exact_reference(n, d, seed):
  rng = np.random.default_rng(seed)
  points = _structured(rng, n, d)
  outside = _structured(rng, 24, d)
  mix = rng.dirichlet(np.ones(5), size=8)
  inside = np.einsum("qk,qkd->qd", mix, points[rng.integers(0, n, (8, 5))]).astype(np.float32)
  queries = np.concatenate([outside, inside, points[:3]])
  res = hull.project_onto_hull(points, queries, batch_size=16)
  _check_invariants(points, queries, res)
  for i, x in enumerate(queries):
    exact = reference.min_norm_point(points.astype(np.float64), x.astype(np.float64)).distance
    if i < len(outside):
      assert res.outside[i] and not res.inside[i]
      # The certified interval contains the exact distance, and the answer is within rel_tol.
      assert res.lower_bound[i] <= exact * (1 + 1e-9) + 1e-12
      assert exact <= res.upper_bound[i] * (1 + 1e-9) + 1e-12
      assert abs(res.distance[i] - exact) <= 1e-4 * exact
    else:
      assert res.inside[i] and not res.outside[i]
      assert res.distance[i] <= res.abs_tol[i]
      assert exact < 1e-6
  # A query equal to a training point: distance 0 and that point is its nearest neighbour.
  np.testing.assert_array_equal(res.distance[-3:], 0.0)
  np.testing.assert_array_equal(res.nearest_index[-3:], [0, 1, 2])
  np.testing.assert_array_equal(res.nearest_distance[-3:], 0.0)


def test_simplex_face_and_cube_vertices():
  d = 6
  simplex = np.eye(d, dtype=np.float32)  # Standard simplex; its hull is the face sum(x) = 1.
  t = np.array([0.1, 0.5, 2.0])
  queries = (1.0 / d + t[:, None]) * np.ones((3, d), np.float32)
  res = hull.project_onto_hull(simplex, queries)
  np.testing.assert_allclose(res.distance, t * math.sqrt(d), rtol=1e-5)
  # Strong convexity in p: |p - p*|^2 <= 2 (f - f*) <= 2 gap = 2 rel_gap |r|^2.
  err = np.linalg.norm(res.projection - 1.0 / d, axis=1)
  assert np.all(err <= np.sqrt(2 * res.rel_gap) * res.distance + 1e-6)
  assert np.all(res.outside)

  cube = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.float32)
  queries = np.array([[2, .5, .5], [.5, .5, -3], [2, 2, 2], [.3, .6, .9], [1, 1, 1]], np.float32)
  res = hull.project_onto_hull(cube, queries)
  np.testing.assert_allclose(res.distance[:3], [1, 3, math.sqrt(3)], rtol=1e-5)
  np.testing.assert_array_equal(res.outside, [True, True, True, False, False])
  np.testing.assert_array_equal(res.inside, [False, False, False, True, True])


def test_degenerate_sizes_and_duplicates():
  rng = np.random.default_rng(3)
  # n = 1: the hull is a point.
  a = rng.random((1, 5))
  x = rng.random((4, 5))
  res = hull.project_onto_hull(a, x)
  np.testing.assert_allclose(res.distance, np.linalg.norm(x - a, axis=1), rtol=1e-6)
  np.testing.assert_array_equal(res.support[:, 0], 0)
  # d = 1: the hull is an interval.
  res = hull.project_onto_hull(np.array([[0.0], [1.0], [3.0]]), np.array([[-2.0], [2.0], [5.0]]))
  np.testing.assert_allclose(res.distance, [2.0, 0.0, 2.0], atol=1e-6)
  np.testing.assert_array_equal(res.inside, [False, True, False])
  # Duplicated points change nothing.
  points = _structured(rng, 200, 16)
  queries = _structured(rng, 10, 16)
  once = hull.project_onto_hull(points, queries)
  twice = hull.project_onto_hull(np.concatenate([points, points, points[:50]]), queries)
  np.testing.assert_allclose(once.distance, twice.distance, rtol=2e-4)


def test_translation_and_scale_invariance():
  rng = np.random.default_rng(4)
  points, queries = _structured(rng, 400, 32), _structured(rng, 12, 32)
  base = hull.project_onto_hull(points, queries)
  moved = hull.project_onto_hull(3.0 * points + 5.0, 3.0 * queries + 5.0)
  np.testing.assert_allclose(moved.distance, 3.0 * base.distance, rtol=2e-4)


def test_chunked_pricing_and_float64_agree():
  rng = np.random.default_rng(5)
  points, queries = _structured(rng, 700, 40), _structured(rng, 20, 40)
  base = hull.project_onto_hull(points, queries)
  chunked = hull.project_onto_hull(points, queries, chunk_size=64, batch_size=7)
  exact = hull.project_onto_hull(points, queries, dtype="float64", rel_tol=1e-8)
  np.testing.assert_allclose(chunked.distance, base.distance, rtol=2e-4)
  np.testing.assert_allclose(exact.distance, base.distance, rtol=2e-4)
  assert np.all(exact.rel_gap <= 1e-8)
  np.testing.assert_array_equal(chunked.nearest_index, base.nearest_index)
  # Points streamed from the host chunk by chunk (larger than the device budget): same answers.
  streamed = hull.project_onto_hull(points, queries, chunk_size=64, device_bytes=1)
  # Same algorithm, same chunks; XLA may fuse the host-fed chunks differently, so float32
  # rounding (not the tolerance of the solver) bounds the difference.
  np.testing.assert_allclose(streamed.distance, chunked.distance, rtol=1e-6)
  np.testing.assert_array_equal(streamed.outside, chunked.outside)
  assert np.all(streamed.lower_bound <= chunked.upper_bound)
  assert np.all(chunked.lower_bound <= streamed.upper_bound)


def test_too_small_working_set_is_reported_not_hidden():
  rng = np.random.default_rng(6)
  points, queries = _structured(rng, 2000, 200, rank=60), _structured(rng, 8, 200, rank=60)
  res = hull.project_onto_hull(points, queries, working_set_size=4, atoms_per_pass=2,
                               max_passes=3)
  exact = np.array([reference.min_norm_point(points.astype(np.float64),
                                             x.astype(np.float64)).distance for x in queries])
  # Not converged, but the interval it reports is still valid.
  assert not np.all(res.converged)
  assert np.all(res.lower_bound <= exact * (1 + 1e-9))
  assert np.all(exact <= res.upper_bound * (1 + 1e-9))


def test_wendel_theorem():
  """N = 2d symmetric points: the origin is outside their hull with probability exactly 1/2."""
  d, trials = 4, 300
  rng = np.random.default_rng(7)
  origin = np.zeros((1, d), np.float32)
  outside = 0
  undetermined = 0
  for _ in range(trials):
    points = rng.standard_normal((2 * d, d)).astype(np.float32)
    res = hull.hull_membership(points, origin)
    if res.verdict[0] == "undetermined":  # Within float32 rounding of the boundary: use float64.
      undetermined += 1
      res = hull.hull_membership(points, origin, dtype="float64")
    assert res.verdict[0] in ("inside", "outside")
    assert res.outside[0] == (not reference.in_hull_lp(points.astype(np.float64), origin[0]))
    outside += res.outside[0]
  assert undetermined <= 0.02 * trials
  sigma = math.sqrt(0.25 / trials)
  assert abs(outside / trials - 0.5) < 3 * sigma


def test_membership_witnesses():
  rng = np.random.default_rng(8)
  points = rng.standard_normal((60, 5))
  inside_q = rng.dirichlet(np.ones(60), size=3) @ points
  outside_q = 10 + rng.standard_normal((3, 5))
  m = hull.hull_membership(points, np.concatenate([inside_q, outside_q]))
  np.testing.assert_array_equal(m.verdict, ["inside"] * 3 + ["outside"] * 3)
  r = m.result
  recon = np.einsum("qk,qkd->qd", r.weights, points[np.maximum(r.support, 0)])
  np.testing.assert_allclose(recon[:3], inside_q, atol=1e-3)


def test_per_class_distances():
  rng = np.random.default_rng(9)
  a = rng.standard_normal((50, 3))
  b = rng.standard_normal((50, 3)) + np.array([20.0, 0, 0])
  points = np.concatenate([a, b])
  labels = np.repeat([0, 1], 50)
  queries = np.stack([a[:5].mean(0), b[:5].mean(0)])  # Inside their own class hulls.
  pc = hull.per_class_distances(points, labels, queries, [0, 1])
  np.testing.assert_allclose(pc.own_distance, 0.0, atol=1e-3)
  np.testing.assert_array_equal(pc.nearest_other_class, [1, 0])
  assert np.all(pc.nearest_other_distance > 10)
  assert np.all(pc.closer_to_own)
  with pytest.raises(ValueError, match="class 2 has no points"):
    hull.per_class_distances(points, labels, queries, [0, 1], num_classes=3)


@pytest.mark.parametrize("points,queries,match", [
    (np.full((3, 2), np.nan), np.zeros((1, 2)), "NaN or Inf"),
    (np.zeros((3, 2)), np.array([[np.inf, 0.0]]), "NaN or Inf"),
    (np.zeros((3, 2)), np.zeros((1, 3)), "3 dimensions but points have 2"),
    (np.zeros((0, 2)), np.zeros((1, 2)), "empty"),
    (np.zeros(3), np.zeros((1, 3)), "must be 2-D"),
    (np.array([["a", "b"]]), np.zeros((1, 2)), "numeric"),
])
def test_bad_input(points, queries, match):
  with pytest.raises(ValueError, match=match):
    hull.project_onto_hull(points, queries)


def test_bad_options():
  with pytest.raises(ValueError, match="rel_tol"):
    hull.project_onto_hull(np.zeros((2, 2)), np.zeros((1, 2)), rel_tol=0)
  with pytest.raises(TypeError, match="unknown solver option"):
    hull.project_onto_hull(np.zeros((2, 2)), np.zeros((1, 2)), bogus=1)


def test_kernels_are_xla_compiled():
  fn = backend.compile_fn(hull.solver.kernels.price_chunk, nearest=True)
  assert backend.name() == "tensorflow"
  assert fn._jit_compile  # pylint: disable=protected-access


def _run(code: str, env_extra: dict) -> str:
  env = dict(os.environ, **env_extra, PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


_PROBLEM = """
import numpy as np
rng = np.random.default_rng(11)
points = rng.random((500, 30)).astype(np.float32)
queries = np.concatenate([rng.random((20, 30)), points[:10] * .5 + points[10:20] * .5]).astype(np.float32)
"""


def test_jax_backend_matches_and_does_not_import_tensorflow(tmp_path):
  pytest.importorskip("jax")
  code = _PROBLEM + f"""
import sys
from tfhull.hull import project_onto_hull
res = project_onto_hull(points, queries, chunk_size=128)
assert "tensorflow" not in sys.modules, "tfhull.hull imported TensorFlow under JAX"
np.save({str(tmp_path / 'jax.npy')!r}, res.distance)
# The p-space working set (insert_atoms, whose state JAX donates to the call).
res = project_onto_hull(points, queries, chunk_size=128, gram_state=False)
np.save({str(tmp_path / 'jax_pspace.npy')!r}, res.distance)
"""
  _run(code, {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
  exec(_PROBLEM, ns := {})  # pylint: disable=exec-used
  tf_res = hull.project_onto_hull(ns["points"], ns["queries"], chunk_size=128)
  np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), tf_res.distance, rtol=2e-4, atol=1e-6)
  np.testing.assert_allclose(np.load(tmp_path / "jax_pspace.npy"), tf_res.distance, rtol=2e-4,
                             atol=1e-6)


def _unique_candidates(idx: np.ndarray) -> bool:
  return all(len(set(row.tolist())) == len(row) for row in idx)


# Records every pricing pass's merged candidate lists (scores, indices) in `PRICED`.
_RECORD_PRICING = """
from tfhull.hull import pricing as _pricing
PRICED = []
_price = _pricing.Pricer.__call__
def _recording(self, w, nearest, groups=None):
  out = _price(self, w, nearest, groups)
  PRICED.append(out)
  return out
_pricing.Pricer.__call__ = _recording
"""


def test_mirrored_strategy_two_replicas_matches_one_device(tmp_path):
  # 500 points in chunks of 64: 8 chunks, 4 groups of 2 replicas, so the running top-m crosses
  # groups (issue 11: it was merged replicas + 1 times, duplicating candidates, doubling passes).
  code = _PROBLEM + _RECORD_PRICING + f"""
from tfhull import distribute
distribute.split_cpu(2)
import tensorflow as tf
from tfhull.hull import project_onto_hull
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
res = project_onto_hull(points, queries, chunk_size=64, strategy=strategy)
np.save({str(tmp_path / 'mirrored.npy')!r},
        np.stack([res.distance, res.nearest_index, res.passes, res.iterations]))
np.savez({str(tmp_path / 'priced.npz')!r}, *[v for pair in PRICED for v in pair])
# One trace per shape, shared by every solve: the nearest-neighbour pass (one batch shape) traces
# once for all its groups; a second solve traces nothing (a tf.function per pricer re-traced).
fns = [_pricing.group_fn(strategy, nearest) for nearest in (True, False)]
traces = [f.experimental_get_tracing_count() for f in fns]
assert traces[0] == 1 and traces[1] >= 1, traces
again = project_onto_hull(points, queries, chunk_size=64, strategy=strategy)
assert [f.experimental_get_tracing_count() for f in fns] == traces, traces
np.testing.assert_array_equal(again.distance, res.distance)
"""
  _run(code, {"KERAS_BACKEND": "tensorflow"})
  exec(_PROBLEM, ns := {})  # pylint: disable=exec-used
  record = {}
  exec(_RECORD_PRICING, record)  # pylint: disable=exec-used
  try:
    one = hull.project_onto_hull(ns["points"], ns["queries"], chunk_size=64)
  finally:
    pricing.Pricer.__call__ = record["_price"]
  distance, nearest, passes, iterations = np.load(tmp_path / "mirrored.npy")
  np.testing.assert_allclose(distance, one.distance, rtol=2e-4, atol=1e-6)
  np.testing.assert_array_equal(nearest, one.nearest_index)
  # The same work as one device: the same candidate lists every pass, so the same passes and steps.
  np.testing.assert_array_equal(passes, one.passes)
  np.testing.assert_array_equal(iterations, one.iterations)
  with np.load(tmp_path / "priced.npz") as z:
    mirrored = [z[f"arr_{i}"] for i in range(len(z.files))]
  priced = [v for pair in record["PRICED"] for v in pair]
  assert len(mirrored) == len(priced) >= 4
  for j in range(0, len(priced), 2):
    idx, m_idx = priced[j + 1], mirrored[j + 1]
    assert _unique_candidates(m_idx) and _unique_candidates(idx), f"duplicates in pass {j // 2}"
    assert m_idx.min() >= 0 and idx.min() >= 0
    np.testing.assert_array_equal(m_idx, idx)
    np.testing.assert_array_equal(mirrored[j], priced[j])


def test_merge_top_keeps_disjoint_candidates_unique():
  # merge_top of disjoint lists returns unique indices, ordered as the one-device chunk loop.
  rng = np.random.default_rng(3)
  scores = rng.random((5, 24)).astype(np.float32)
  scores[:, 5] = scores[:, 17]  # A tie across lists: the earlier list wins, as in the chunk loop.
  lists = []
  for c in range(3):
    order = np.argsort(-scores[:, 8 * c:8 * c + 8], axis=1, kind="stable")[:, :4]
    lists.append((np.take_along_axis(scores[:, 8 * c:8 * c + 8], order, 1),
                  (order + 8 * c).astype(np.int32)))
  vals, idx = hull.solver.kernels.merge_top([v for v, _ in lists], [i for _, i in lists])
  idx = backend.to_numpy(idx)
  assert _unique_candidates(idx)
  cand = np.concatenate([i for _, i in lists], axis=1)
  cand_vals = np.concatenate([v for v, _ in lists], axis=1)
  want = np.take_along_axis(cand, np.argsort(-cand_vals, axis=1, kind="stable")[:, :4], 1)
  np.testing.assert_array_equal(idx, want)
  np.testing.assert_array_equal(backend.to_numpy(vals), -np.sort(-cand_vals, axis=1)[:, :4])


def test_low_dimensional_inside_points_are_certified_by_the_exact_polish():
  rng = np.random.default_rng(11)
  points = rng.normal(size=(400, 6))
  mix = rng.dirichlet(np.ones(20), size=64)
  inside_q = np.einsum("qk,qkd->qd", mix, points[rng.integers(0, 400, size=(64, 20))])
  outside_q = rng.normal(size=(32, 6)) * 4
  queries = np.r_[inside_q, outside_q]
  res = hull.project_onto_hull(points, queries)
  plain = hull.project_onto_hull(points, queries, polish_max_dim=0)
  assert res.inside[:64].all() and res.converged.all()
  # The exact solve on the working sets saves Frank-Wolfe steps (here about half).
  assert res.iterations[:64].mean() < 0.8 * plain.iterations[:64].mean()
  assert res.converged.sum() >= plain.converged.sum()
  projection = np.einsum("qk,qkd->qd", res.weights, points[np.maximum(res.support, 0)])
  np.testing.assert_allclose(projection[:64], inside_q, atol=res.abs_tol[:64].max())
  # Outside points keep a valid certified interval around the exact distance.
  exact = np.array([reference.min_norm_point(points, q).distance for q in outside_q])
  assert np.all(res.lower_bound[64:] <= exact * (1 + 1e-9) + 1e-12)
  assert np.all(exact <= res.upper_bound[64:] * (1 + 1e-9) + 1e-12)


def test_per_class_equals_separate_solves_and_adaptive_working_set_equals_full_width():
  """Issue 12, per-class cost: working sets start at min(K, max(2m, 32)) slots and grow on demand, which
  makes per-class hulls (small supports) cheap. The per-class result must equal separate solves
  on each class's points with the full K-slot working set: same verdicts, distances within the
  tolerance, the same work (passes) or less (Frank-Wolfe steps)."""
  rng = np.random.default_rng(12)
  d, per = 80, 100
  points = np.concatenate([rng.standard_normal((per, d)) + 4 * c for c in range(3)])
  labels = np.repeat(np.arange(3), per)
  inside = np.stack([rng.dirichlet(np.ones(80)) @ points[labels == c][:80] for c in range(3)])
  queries = np.concatenate([inside, points[::per // 2][:3] + 2 * rng.standard_normal((3, d))])
  qlabels = np.array([0, 1, 2, 0, 1, 2])
  calls = []  # One pricing call per pass for all classes (one batched GEMM), not one per class.
  price = pricing.ClassPricer.__call__

  def counted(self, w, nearest, groups=None):
    calls.append(np.bincount(groups, minlength=3))
    return price(self, w, nearest, groups)
  pricing.ClassPricer.__call__ = counted
  try:
    pc = hull.per_class_distances(points, labels, queries, qlabels, progress=False)
  finally:
    pricing.ClassPricer.__call__ = price
  assert len(calls) == pc.passes.max()  # Pass 1 (nearest) + one per later pass, all classes.
  np.testing.assert_array_equal(calls[0], [6, 6, 6])  # Every (query, class) pair.
  # Later passes price only the live pairs: as many as have not converged by then.
  for p, per_class in enumerate(calls[1:], start=2):
    np.testing.assert_array_equal(per_class, (pc.passes >= p).sum(0))
  work_pc = work_full = 0  # Rows priced: sum over classes of passes x class size.
  for c in range(3):
    full = hull.project_onto_hull(points[labels == c], queries, adaptive_working_set=False,
                                  progress=False)
    work_pc += pc.passes[:, c].sum() * per
    work_full += full.passes.sum() * per
    np.testing.assert_array_equal(pc.verdict[:, c], full.verdict)
    np.testing.assert_allclose(pc.upper_bound[:, c], full.upper_bound, rtol=2e-4, atol=1e-6)
    assert np.all(pc.lower_bound[:, c] <= full.upper_bound * (1 + 1e-9))
    assert np.all(full.lower_bound <= pc.upper_bound[:, c] * (1 + 1e-9))
  assert work_pc <= work_full + 3 * 2 * per, (work_pc, work_full)  # Same work, class by class.
  adaptive = hull.project_onto_hull(points[labels == 2], queries, progress=False)
  np.testing.assert_array_equal(adaptive.verdict, full.verdict)
  # The per-class call does exactly the work of the separate solve with the same options.
  np.testing.assert_array_equal(pc.passes[:, 2], adaptive.passes)
  assert adaptive.passes.sum() <= full.passes.sum() + 2  # The same work, in fewer slots.
  assert adaptive.nnz.max() > 64, adaptive.nnz  # The inside query's support outgrew 64 slots.


def test_pricing_policy_large_n_takes_fatter_passes_only_when_automatic():
  """Issue 12, passes at n = 60,000: m = 128 into K = 256 slots (and >= 1,024 inner steps) from
  n = 32,768 with automatic m and K; explicit settings and small n keep m = 16, K = 128."""
  policy, cfg = solver._pricing_policy, solver.SolverConfig
  assert policy(cfg(), 10_000) == (16, 128, 256)
  assert policy(cfg(), 60_000) == (128, 256, 1024)
  assert policy(cfg(working_set_size=128), 60_000) == (16, 128, 256)
  assert policy(cfg(atoms_per_pass=32), 60_000) == (32, 256, 1024)
  assert policy(cfg(working_set_size=4, atoms_per_pass=2), 3) == (2, 4, 256)
  assert policy(cfg(), 100) == (16, 128, 256)
  with pytest.raises(ValueError, match="atoms_per_pass"):
    hull.project_onto_hull(np.eye(3), np.ones((1, 3)), atoms_per_pass=-1)


def test_new_shapes_do_not_warn_about_retracing(caplog):
  """Every batch size and compacted live count is its own compiled shape (one trace each);
  TensorFlow must not log "excessive retracing" warnings at users for them."""
  fn = backend.compile_fn(hull.solver.kernels.take_rows)
  with caplog.at_level("WARNING"):
    for q in (3, 5, 9, 17, 33, 65, 129, 257):
      rows = np.arange(q, dtype=np.int32) % 2
      np.testing.assert_array_equal(backend.to_numpy(fn(np.ones((q, 2), np.float32), rows)),
                                    np.ones((q, 2)))
  assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_ten_class_hulls_in_one_solve_equal_ten_separate_solves():
  """Issue 12: ten per-class hulls in one solve (one pricing call per pass for all classes)
  give the verdicts, distance intervals and passes of ten separate solves."""
  rng = np.random.default_rng(10)
  labels = np.repeat(np.arange(10), 30)
  points = rng.standard_normal((300, 8)) + 3.0 * np.eye(10, 8)[labels]
  inside = points[labels == 4][:5].mean(0)  # Inside class 4's hull, outside the others'.
  queries = np.concatenate([3 * rng.standard_normal((7, 8)), inside[None]])
  pc = hull.per_class_distances(points, labels, queries, np.arange(8) % 10, progress=False)
  for c in range(10):
    one = hull.project_onto_hull(points[labels == c], queries, progress=False)
    np.testing.assert_array_equal(pc.verdict[:, c], one.verdict)
    np.testing.assert_allclose(pc.upper_bound[:, c], one.upper_bound, rtol=2e-4, atol=1e-6)
    assert np.all(pc.lower_bound[:, c] <= one.upper_bound * (1 + 1e-9))
    assert np.all(one.lower_bound <= pc.upper_bound[:, c] * (1 + 1e-9))
    assert np.abs(pc.passes[:, c] - one.passes).max() <= 1
  assert pc.verdict[7, 4] == solver.INSIDE and (pc.verdict == solver.OUTSIDE).sum() >= 70
