"""The projected-gradient method (tfhull.hull.projected_gradient) against exact references, column
generation, known geometry and Wendel's theorem; screening safety; one program per batch shape;
JAX (no host callbacks in the loop) and a 2-replica tf.distribute strategy."""

import math

import numpy as np
import pytest

from tfhull import hull
from tfhull.hull import backend
from tfhull.hull import projected_gradient as pg
from tfhull.hull import reference

from test_hull_solver import _check_invariants  # pylint: disable=g-bad-import-order
from test_hull_solver import _PROBLEM
from test_hull_solver import _run
from test_hull_solver import _structured

N, D, BATCH = 300, 20, 16


@pytest.fixture(scope="module")
def case():
  """test_hull_solver's exactness construction (n = 300, d = 20): outside queries, inside
  Dirichlet mixtures, training points; the exact (Wolfe) solutions and column generation."""
  rng = np.random.default_rng(0)
  points = _structured(rng, N, D)
  outside = _structured(rng, 24, D)
  mix = rng.dirichlet(np.ones(5), size=8)
  inside = np.einsum("qk,qkd->qd", mix, points[rng.integers(0, N, (8, 5))]).astype(np.float32)
  queries = np.concatenate([outside, inside, points[:3]])
  exact = [reference.min_norm_point(points.astype(np.float64), x.astype(np.float64))
           for x in queries]
  pg.TRACES.clear()
  res, stats = pg.solve(points, queries, batch_size=BATCH)
  # Fixed shapes (no compaction, full working sets): fewer programs to compile.
  cg = hull.project_onto_hull(points, queries, batch_size=BATCH, compact=False,
                              adaptive_working_set=False)
  return dict(points=points, queries=queries, n_out=len(outside), exact=exact, res=res,
              stats=stats, cg=cg)


def test_interval_contains_exact_and_agrees_with_column_generation(case):
  res, cg, exact = case["res"], case["cg"], case["exact"]
  _check_invariants(case["points"], case["queries"], res)
  d_star = np.array([e.distance for e in exact])
  k = case["n_out"]
  assert np.all(res.outside[:k]) and not np.any(res.outside[k:])
  assert np.all(res.inside[k:])
  assert np.all(res.lower_bound <= d_star * (1 + 1e-9) + 1e-12)
  assert np.all(d_star <= res.upper_bound * (1 + 1e-9) + 1e-12)
  assert np.all(np.abs(res.distance[:k] - d_star[:k]) <= 1e-4 * d_star[:k])
  np.testing.assert_array_equal(res.verdict, cg.verdict)
  np.testing.assert_allclose(res.distance[:k], cg.distance[:k], rtol=1e-4)
  np.testing.assert_array_equal(res.distance[-3:], 0.0)
  np.testing.assert_array_equal(res.nearest_index, cg.nearest_index)


def test_screening_is_safe_and_screens(case):
  stats, exact = case["stats"], case["exact"]
  k = case["n_out"]
  for i in range(k):  # Outside queries: the exact support is unique here (Wolfe's, general data).
    assert not stats.screened[i, exact[i].support].any(), i
  assert stats.screened_fraction[:k].mean() > 0.5  # Most points leave the outside queries' solve.
  np.testing.assert_allclose(stats.screened_fraction, stats.screened.mean(1))


def test_one_compiled_program_per_batch_shape(case):
  # The fixture traced the loop once for its 3 batches of 16; new data of the same shapes
  # reuses it, and each batch is one call per pass (no host round trip inside the iteration).
  assert pg.TRACES["fista_loop"] == 1
  rng = np.random.default_rng(1)
  points = _structured(rng, N, D)
  res, stats = pg.solve(points, _structured(rng, BATCH, D), batch_size=BATCH)
  assert pg.TRACES["fista_loop"] == 1
  assert stats.programs == int(res.passes.max()) - 1  # One batch: one program per pass.
  fn = backend.compile_fn(pg.fista_loop, max_iterations=pg.PGConfig.iterations_per_pass,
                          check_every=pg.PGConfig.check_every, screening=True)
  assert fn._jit_compile  # pylint: disable=protected-access


def test_known_geometry_and_dispatch():
  # The unit cube in the first 3 of 4 coordinates, one query per batch: the shapes of the Wendel
  # test below (8 points in 4-d, batches of 1), so both share one compiled program.
  cube = np.array([[i, j, k, 0] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.float32)
  queries = np.array([[2, .5, .5, 0], [.5, .5, -3, 0], [2, 2, 2, 0], [.3, .6, .9, 0],
                      [1, 1, 1, 0]], np.float32)
  res = hull.project_onto_hull(cube, queries, method="projected_gradient", batch_size=1)
  np.testing.assert_allclose(res.distance[:3], [1, 3, math.sqrt(3)], rtol=1e-5)
  np.testing.assert_array_equal(res.verdict_names, ["outside"] * 3 + ["inside"] * 2)
  # auto: column generation wherever measured (projected gradient stalls at 784 x 10k, 64-d).
  for kind in ("cpu", "gpu", "tpu"):
    for d in (64, 784, 3072):
      assert pg.choose_method(60000, d, kind=kind) == "column_generation"
  assert pg.resolve_method("auto", cube, {}) == "column_generation"
  with pytest.raises(ValueError, match="method must be one of"):
    hull.project_onto_hull(cube, queries, method="newton")


def test_streamed_points_match_resident(case):
  """device_bytes below the points (384 x 20 float32 = 30 KiB): A stays on the host and every
  product with it is streamed in 2 chunks of 152 rows. 16 outside queries (the fixture's, twice
  as far from the centroid: fewer iterations) must come out as from the resident program (the
  fixture's shapes, compiled): the same work and the same intervals."""
  points = case["points"]
  mu = points.mean(0)
  queries = (mu + 2 * (case["queries"][:BATCH] - mu)).astype(np.float32)
  one, one_stats = pg.solve(points, queries, batch_size=BATCH)
  before = pg.TRACES.copy()
  res, stats = pg.solve(points, queries, batch_size=BATCH, device_bytes=2 * 160 * D * 4)
  assert stats.streamed_chunks == 2 and one_stats.streamed_chunks == 0
  # One compiled program per piece, reused by every chunk (the offset is a tensor).
  for piece in ("chunk_scores", "chunk_scores_step", "chunk_combine", "chunk_combine_accept"):
    assert pg.TRACES[piece] - before[piece] == 1, piece
  assert pg.TRACES["fista_loop"] == before["fista_loop"]  # The resident program never ran.
  assert np.all(one.outside) and one.iterations.min() > 0
  np.testing.assert_array_equal(res.verdict, one.verdict)
  np.testing.assert_array_equal(res.passes, one.passes)
  # The iterates differ only by the summation order of alpha A across chunks.
  np.testing.assert_allclose(res.iterations, one.iterations, rtol=0.05,
                             atol=pg.PGConfig.check_every)
  np.testing.assert_allclose(stats.screened_fraction, one_stats.screened_fraction, atol=0.02)
  np.testing.assert_allclose(stats.lipschitz, one_stats.lipschitz, rtol=1e-5)
  exact = [reference.min_norm_point(points.astype(np.float64), x.astype(np.float64))
           for x in queries]
  for i, e in enumerate(exact):  # Screening stays safe when streamed.
    assert not stats.screened[i, e.support].any(), i
  d_star = np.array([e.distance for e in exact])
  assert np.all((res.lower_bound <= d_star * (1 + 1e-9)) & (d_star <= res.upper_bound * (1 + 1e-9)))
  np.testing.assert_allclose(res.distance, one.distance, rtol=1e-4)


def test_wendel_membership_matches_lp():
  """N = 2d symmetric Gaussian points: the origin's verdict equals the exact LP's, trial by
  trial (Wendel: outside with probability 1/2)."""
  d, trials = 4, 24
  rng = np.random.default_rng(7)
  origin = np.zeros((1, d), np.float32)
  outside = 0
  for _ in range(trials):
    points = rng.standard_normal((2 * d, d)).astype(np.float32)
    res = hull.project_onto_hull(points, origin, method="projected_gradient")
    if res.verdict[0] == hull.solver.UNDETERMINED:  # Within float32 rounding of the boundary.
      res = hull.project_onto_hull(points, origin, method="projected_gradient", dtype="float64")
    assert res.outside[0] == (not reference.in_hull_lp(points.astype(np.float64), origin[0]))
    assert res.verdict[0] != hull.solver.UNDETERMINED
    outside += res.outside[0]
  assert abs(outside / trials - 0.5) < 3 * math.sqrt(0.25 / trials)  # Loose at 24 trials.
  assert 0 < outside < trials


def test_jax_path_has_no_host_callbacks_and_matches(tmp_path):
  pytest.importorskip("jax")
  code = _PROBLEM + f"""
import sys
import jax
from tfhull.hull import backend, projected_gradient as pg
res, stats = pg.solve(points, queries, batch_size=32)
assert "tensorflow" not in sys.modules
assert pg.TRACES["fista_loop"] == 1, pg.TRACES
fn = backend.compile_fn(pg.fista_loop, max_iterations=pg.PGConfig.iterations_per_pass,
                        check_every=pg.PGConfig.check_every, screening=True)
b, npad = 32, 512
f32 = np.float32
args = (np.zeros((npad, 30), f32), np.zeros(npad, f32), np.zeros((b, 30), f32),
        np.zeros((b, npad), f32), np.ones((b, npad), bool), np.ones(b, bool), np.zeros(b, f32),
        np.zeros(b, f32), f32(1), np.zeros(b, f32))
hlo = fn.lower(*args).as_text()
assert "while" in hlo and "callback" not in hlo.lower(), "host callback in the loop"
np.save({str(tmp_path / 'jax.npy')!r}, np.stack([res.distance, res.lower_bound, res.verdict]))
"""
  _run(code, {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"})
  exec(_PROBLEM, ns := {})  # pylint: disable=exec-used
  tf_res = hull.project_onto_hull(ns["points"], ns["queries"], batch_size=32,
                                  method="projected_gradient")
  distance, lower, verdict = np.load(tmp_path / "jax.npy")
  np.testing.assert_array_equal(verdict, tf_res.verdict)
  np.testing.assert_allclose(distance, tf_res.distance, rtol=2e-4, atol=1e-6)
  assert np.all(lower <= tf_res.upper_bound * (1 + 1e-9))


@pytest.mark.slow  # A TensorFlow subprocess (~20 s CPU): keeps this file within its CI budget.
def test_mirrored_strategy_two_replicas_matches_one_device(tmp_path):
  code = _PROBLEM + f"""
from tfhull import distribute
distribute.split_cpu(2)
import tensorflow as tf
from tfhull.hull import projected_gradient as pg
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
res, stats = pg.solve(points, queries, batch_size=32, strategy=strategy)
np.save({str(tmp_path / 'mirrored.npy')!r},
        np.stack([res.distance, res.lower_bound, res.verdict, res.passes, res.iterations,
                  stats.screened_fraction]))
"""
  _run(code, {"KERAS_BACKEND": "tensorflow"})
  exec(_PROBLEM, ns := {})  # pylint: disable=exec-used
  one, stats = pg.solve(ns["points"], ns["queries"], batch_size=32)
  distance, lower, verdict, passes, iterations, screened = np.load(tmp_path / "mirrored.npy")
  np.testing.assert_array_equal(verdict, one.verdict)
  np.testing.assert_allclose(distance, one.distance, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(lower, one.lower_bound, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(passes, one.passes)
  # Each replica iterates its own queries; the same work per query as one device.
  np.testing.assert_array_equal(iterations, one.iterations)
  np.testing.assert_allclose(screened, stats.screened_fraction)


# Outside queries (uniform points in 20-d: 300 are far from filling the cube) and two training
# points: a few hundred iterations, so the 2-replica subprocess fits `make test`.
_OUTSIDE = """
import numpy as np
rng = np.random.default_rng(11)
points = rng.random((300, 20)).astype(np.float32)
queries = np.concatenate([rng.random((14, 20)) * 1.5 - .25, points[:2]]).astype(np.float32)
"""


def test_mirrored_two_replicas_same_work_as_one_device(tmp_path):
  """Two replicas of a MirroredStrategy (2 logical CPUs, a subprocess: the split must precede
  TensorFlow's start) each iterate 8 of the 16 queries: the same passes, iterations, screening
  and answers per query as one device; streaming under a strategy is refused in one line."""
  code = _OUTSIDE + f"""
from tfhull import distribute
distribute.split_cpu(2)
import tensorflow as tf
from tfhull.hull import projected_gradient as pg
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
res, stats = pg.solve(points, queries, batch_size=16, strategy=strategy)
np.save({str(tmp_path / 'mirrored.npy')!r},
        np.stack([res.distance, res.lower_bound, res.verdict, res.passes, res.iterations,
                  res.nearest_index, stats.screened_fraction, np.full(16, stats.programs)]))
try:
  pg.solve(points, queries, batch_size=16, strategy=strategy, device_bytes=1024)
  raise AssertionError("streaming under a strategy did not raise")
except pg.DeviceMemoryError as e:
  assert "strategy=None" in str(e) and "\\n" not in str(e), e
"""
  _run(code, {"KERAS_BACKEND": "tensorflow"})
  exec(_OUTSIDE, ns := {})  # pylint: disable=exec-used
  one, stats = pg.solve(ns["points"], ns["queries"], batch_size=16)
  (distance, lower, verdict, passes, iterations, nearest, screened,
   programs) = np.load(tmp_path / "mirrored.npy")
  np.testing.assert_array_equal(verdict, one.verdict)
  assert np.all(one.outside[:14]) and np.all(one.distance[14:] == 0)
  np.testing.assert_array_equal(nearest, one.nearest_index)
  np.testing.assert_array_equal(passes, one.passes)
  np.testing.assert_array_equal(iterations, one.iterations)  # Each query's own iterations.
  assert one.iterations[:14].min() > 0 and programs[0] == stats.programs
  np.testing.assert_allclose(screened, stats.screened_fraction, atol=1e-9)
  assert stats.screened_fraction[:14].mean() > 0.5
  np.testing.assert_allclose(distance, one.distance, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(lower, one.lower_bound, rtol=1e-6, atol=1e-7)
