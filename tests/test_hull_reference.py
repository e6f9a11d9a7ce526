"""Tests for the float64 reference hull solvers (tfhull/hull/reference.py).

Compares projections and distances, never weights (alpha is not unique); weights are checked for
feasibility and for reproducing the projection.
"""

import ast
import math
import pathlib

import numpy as np
import pytest

from tfhull.hull import reference

SQRT2 = math.sqrt(2.0)


def _wolfe(points, query):
  return reference.min_norm_point(points, query)


def _clarabel(points, query):
  pytest.importorskip("cvxpy")
  pytest.importorskip("clarabel")
  return reference.cvxpy_project(points, query, solver="CLARABEL", tol=1e-10)


# (solver, absolute distance tolerance relative to the data scale). An interior-point method
# stopping at objective gap tol has distance error up to sqrt(2 tol) when the distance is ~0.
SOLVERS = [pytest.param(_wolfe, 1e-12, id="wolfe"), pytest.param(_clarabel, 3e-5, id="clarabel")]


def _scale(points):
  a = np.asarray(points, dtype=np.float64)
  return max(float(np.max(np.linalg.norm(a - a.mean(axis=0), axis=1))), 1.0)


def _check_feasible(points, res, atol=1e-10):
  """alpha on the simplex, reproducing the projection; support = nonzero weights."""
  a = np.asarray(points, dtype=np.float64)
  assert res.weights.shape == (a.shape[0],)
  assert res.projection.shape == (a.shape[1],)
  assert np.all(res.weights >= 0.0)
  assert abs(res.weights.sum() - 1.0) <= 1e-12
  np.testing.assert_array_equal(res.support, np.flatnonzero(res.weights > 0))
  assert np.linalg.norm(res.weights @ a - res.projection) <= atol * _scale(a)


def _check_against(points, query, res, distance, projection=None, atol=1e-7):
  _check_feasible(points, res)
  scale = _scale(points)
  assert res.distance == pytest.approx(distance, abs=atol * scale)
  assert np.linalg.norm(np.asarray(query) - res.projection) == pytest.approx(distance,
                                                                            abs=atol * scale)
  if projection is not None:
    np.testing.assert_allclose(res.projection, projection, atol=atol * scale)


# ----------------------------------------------------------------------------------------------
# Analytic cases.

SEGMENT = [[0.0, 0.0], [2.0, 0.0]]
TRIANGLE = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
CUBE = [[i, j, k] for i in (0.0, 1.0) for j in (0.0, 1.0) for k in (0.0, 1.0)]

ANALYTIC = [
    # (points, query, distance, projection)
    pytest.param(SEGMENT, [3.0, 0.0], 1.0, [2.0, 0.0], id="segment-beyond-end"),
    pytest.param(SEGMENT, [-1.0, 1.0], SQRT2, [0.0, 0.0], id="segment-beyond-start-diag"),
    pytest.param(SEGMENT, [1.0, 1.0], 1.0, [1.0, 0.0], id="segment-beside-middle"),
    pytest.param(SEGMENT, [0.5, -3.0], 3.0, [0.5, 0.0], id="segment-beside-other-side"),
    pytest.param(TRIANGLE, [1.0, 1.0], 1.0 / SQRT2, [0.5, 0.5], id="triangle-beyond-face"),
    pytest.param(TRIANGLE, [2.0, -1.0], SQRT2, [1.0, 0.0], id="triangle-beyond-vertex"),
    pytest.param(TRIANGLE, [0.25, 0.25], 0.0, [0.25, 0.25], id="triangle-inside"),
    pytest.param(CUBE, [2.0, 0.5, 0.5], 1.0, [1.0, 0.5, 0.5], id="cube-face"),
    pytest.param(CUBE, [2.0, 2.0, 0.5], SQRT2, [1.0, 1.0, 0.5], id="cube-edge"),
    pytest.param(CUBE, [2.0, 2.0, 2.0], math.sqrt(3.0), [1.0, 1.0, 1.0], id="cube-vertex"),
    pytest.param(CUBE, [-1.0, 0.5, 3.0], math.sqrt(5.0), [0.0, 0.5, 1.0], id="cube-edge-2"),
    pytest.param(CUBE, [0.3, 0.6, 0.9], 0.0, [0.3, 0.6, 0.9], id="cube-inside"),
    pytest.param(CUBE, [1.0, 0.0, 1.0], 0.0, [1.0, 0.0, 1.0], id="cube-vertex-query"),
    pytest.param([[1.0, 2.0, 3.0]], [4.0, 6.0, 3.0], 5.0, [1.0, 2.0, 3.0], id="n1"),
    pytest.param([[1.0, 2.0, 3.0]], [1.0, 2.0, 3.0], 0.0, [1.0, 2.0, 3.0], id="n1-equal"),
    pytest.param([[-1.0], [3.0], [2.0]], [5.0], 2.0, [3.0], id="d1-right"),
    pytest.param([[-1.0], [3.0], [2.0]], [-4.0], 3.0, [-1.0], id="d1-left"),
    pytest.param([[-1.0], [3.0], [2.0]], [0.0], 0.0, [0.0], id="d1-inside"),
    pytest.param([[1.0, 1.0]] * 5, [4.0, 5.0], 5.0, [1.0, 1.0], id="all-identical"),
    pytest.param([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [0.5, 0.5, 0.5]],
                 [1.0, 1.0, 4.0], math.sqrt(6.0), [2.0, 2.0, 2.0], id="collinear-3d"),
]


@pytest.mark.parametrize("solve,atol", SOLVERS)
@pytest.mark.parametrize("points,query,distance,projection", ANALYTIC)
def test_analytic(solve, atol, points, query, distance, projection):
  res = solve(np.array(points), np.array(query))
  _check_against(points, query, res, distance, projection, atol=atol)


def test_wolfe_analytic_is_exact():
  res = reference.min_norm_point(CUBE, [2.0, 0.5, 0.5])
  assert res.converged
  assert res.distance == pytest.approx(1.0, abs=1e-14)
  np.testing.assert_allclose(res.projection, [1.0, 0.5, 0.5], atol=1e-14)
  assert res.gap <= 1e-14


def test_training_point_and_convex_combination():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(40, 6))
  for query in (a[7], rng.dirichlet(np.ones(40)) @ a, 0.5 * (a[3] + a[11])):
    res = reference.min_norm_point(a, query)
    _check_against(a, query, res, 0.0, query, atol=1e-12)
    assert res.converged


def test_duplicates_do_not_change_the_answer():
  rng = np.random.default_rng(2)
  a = rng.normal(size=(15, 4))
  dup = np.concatenate([a, a, a[:5], a[:5]])[rng.permutation(40)]
  for query in (3.0 * rng.normal(size=4), a[2], 0.2 * rng.normal(size=4)):
    want = reference.min_norm_point(a, query)
    got = reference.min_norm_point(dup, query)
    _check_against(dup, query, got, want.distance, want.projection, atol=1e-12)


@pytest.mark.parametrize("shift,factor", [(0.0, 1e-3), (0.0, 1e3), (100.0, 1.0), (-7.5, 20.0)])
def test_translation_and_scale_invariance(shift, factor):
  rng = np.random.default_rng(3)
  a = rng.normal(size=(60, 8))
  query = 2.0 * rng.normal(size=8)
  base = reference.min_norm_point(a, query)
  t = shift * rng.normal(size=8)
  res = reference.min_norm_point(factor * a + t, factor * query + t)
  assert res.distance == pytest.approx(factor * base.distance, rel=1e-10)
  np.testing.assert_allclose(res.projection, factor * base.projection + t,
                             atol=1e-9 * factor * _scale(a) + 1e-12 * np.abs(t).max())


# ----------------------------------------------------------------------------------------------
# Random problems against cvxpy + Clarabel, and the KKT certificate.


def _random_problem(seed):
  """(points (n, d), query (d,), inside?) with n <= 200, d <= 30; every third query is inside."""
  rng = np.random.default_rng(100 + seed)
  n = int(rng.integers(1, 201))
  d = int(rng.integers(1, 31))
  a = rng.normal(size=(n, d)) * rng.uniform(0.1, 3.0, size=d) + rng.normal(size=d)
  inside = seed % 3 == 0
  if inside:
    query = rng.dirichlet(np.full(n, 0.5)) @ a
  else:
    query = a.mean(axis=0) + 2.0 * rng.normal(size=d) * a.std(axis=0).clip(0.1)
  return a, query, inside


@pytest.mark.parametrize("seed", range(20))
def test_matches_clarabel_on_random_problems(seed):
  pytest.importorskip("cvxpy")
  pytest.importorskip("clarabel")
  a, query, inside = _random_problem(seed)
  scale = _scale(a)
  res = reference.min_norm_point(a, query)
  ref = reference.cvxpy_project(a, query, solver="CLARABEL", tol=1e-10)
  assert res.converged
  _check_feasible(a, res)
  _check_feasible(a, ref)
  assert res.distance == pytest.approx(ref.distance, rel=1e-6, abs=1e-7 * scale)
  np.testing.assert_allclose(res.projection, ref.projection, atol=1e-5 * scale)
  if inside:
    assert res.distance <= 1e-10 * scale
  # Wolfe is never worse than the interior-point answer (up to rounding).
  assert res.distance <= ref.distance + 1e-12 * scale


@pytest.mark.parametrize("seed", range(20))
def test_wolfe_kkt_gap(seed):
  a, query, _ = _random_problem(seed)
  res = reference.min_norm_point(a, query)
  r = query - res.projection
  gap = float(np.max(a @ r) - res.projection @ r)
  scale = _scale(a)
  # Optimality: no point of A lies further along r than p (Frank-Wolfe / Wolfe test).
  assert gap <= 1e-10 * scale**2
  assert res.gap <= 1e-11 * (scale**2 + float(np.max(np.sum((a - query)**2, axis=1))))
  # The certified lower bound (||r||^2 - gap) / ||r|| matches the distance.
  if res.distance > 1e-6 * scale:
    assert (res.distance**2 - gap) / res.distance == pytest.approx(res.distance, rel=1e-9)


def test_project_batch_matches_single_queries():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(80, 5))
  queries = np.concatenate([2.0 * rng.normal(size=(4, 5)), rng.dirichlet(np.ones(80), 2) @ a])
  batch = reference.project_batch(a, queries)
  assert len(batch) == len(queries)
  for q, got in zip(queries, batch):
    want = reference.min_norm_point(a, q)
    assert got.distance == pytest.approx(want.distance, abs=1e-12)
    np.testing.assert_allclose(got.projection, want.projection, atol=1e-12)


def test_structured_high_dimensional_problem():
  """Digits-like nonnegative low-rank data in [0, 1], d = 784: converges with a small support."""
  rng = np.random.default_rng(5)
  h = rng.gamma(0.5, 1.0, size=(25, 784)) * (rng.random((25, 784)) < 0.3)
  data = np.clip(rng.gamma(0.3, 1.0, size=(1501, 25)) @ h / 4.0, 0.0, 1.0)
  a, query = data[:1500], data[1500]
  res = reference.min_norm_point(a, query)
  assert res.converged
  _check_feasible(a, res)
  assert 0 < res.distance
  assert res.distance < np.min(np.linalg.norm(a - query, axis=1))
  assert len(res.support) <= 785
  r = query - res.projection
  assert float(np.max(a @ r) - res.projection @ r) <= 1e-10 * _scale(a)**2


def test_max_iter_reports_not_converged():
  rng = np.random.default_rng(9)
  a = rng.normal(size=(300, 20))
  query = 3.0 * rng.normal(size=20)
  early = reference.min_norm_point(a, query, max_iter=2)
  full = reference.min_norm_point(a, query)
  assert not early.converged and full.converged
  _check_feasible(a, early)
  assert early.distance >= full.distance
  assert early.gap > full.gap


def test_invalid_input():
  with pytest.raises(ValueError):
    reference.min_norm_point(np.zeros((3, 2)), np.zeros(3))
  with pytest.raises(ValueError):
    reference.min_norm_point(np.zeros(3), np.zeros(3))
  with pytest.raises(ValueError):
    reference.min_norm_point(np.zeros((0, 2)), np.zeros(2))
  with pytest.raises(ValueError):
    reference.min_norm_point(np.array([[np.nan, 0.0]]), np.zeros(2))
  with pytest.raises(ValueError):
    reference.project_batch(np.zeros((3, 2)), np.zeros((4, 3)))


def test_module_imports_only_numpy_and_scipy():
  tree = ast.parse(pathlib.Path(reference.__file__).read_text())
  modules = set()
  for node in tree.body:
    if isinstance(node, ast.Import):
      modules.update(alias.name.split(".")[0] for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      modules.add(node.module.split(".")[0])
  assert modules <= {"dataclasses", "importlib", "typing", "numpy", "scipy"}, modules


# ----------------------------------------------------------------------------------------------
# cvxpy paths.


def test_ecos_path():
  pytest.importorskip("cvxpy")
  pytest.importorskip("ecos")
  a, query, _ = _random_problem(1)
  want = reference.min_norm_point(a, query)
  got = reference.cvxpy_project(a, query, solver="ECOS", tol=1e-9)
  _check_feasible(a, got)
  assert got.distance == pytest.approx(want.distance, rel=1e-5)
  assert got.iterations > 0


def test_cvxpy_projector_reuses_problem_across_queries():
  pytest.importorskip("cvxpy")
  pytest.importorskip("clarabel")
  rng = np.random.default_rng(6)
  a = rng.normal(size=(50, 3))
  proj = reference.CvxpyProjector(a, solver="clarabel", tol=1e-10)
  problem = proj._problem  # pylint: disable=protected-access
  for query in (np.array([5.0, 0.0, 0.0]), np.zeros(3), a[4]):
    got = proj(query)
    assert proj._problem is problem  # pylint: disable=protected-access
    assert got.distance == pytest.approx(reference.min_norm_point(a, query).distance, abs=1e-7)
  with pytest.raises(ValueError):
    reference.CvxpyProjector(a, solver="SCS")


# ----------------------------------------------------------------------------------------------
# LP membership.


def test_in_hull_lp_agrees_with_distance():
  rng = np.random.default_rng(7)
  counts = {True: 0, False: 0}
  for _ in range(60):
    n, d = int(rng.integers(3, 40)), int(rng.integers(1, 6))
    a = rng.normal(size=(n, d))
    query = 1.3 * rng.normal(size=d)
    dist = reference.min_norm_point(a, query).distance
    if 1e-10 < dist < 1e-6:
      continue  # Too close to the boundary to classify either way.
    inside = reference.in_hull_lp(a, query)
    assert inside == (dist <= 1e-10), (n, d, dist)
    counts[inside] += 1
  assert min(counts.values()) >= 10, counts


def test_in_hull_lp_simple_cases():
  assert reference.in_hull_lp(CUBE, [0.5, 0.5, 0.5])
  assert reference.in_hull_lp(CUBE, [1.0, 1.0, 1.0])
  assert reference.in_hull_lp(CUBE, [1.0, 0.5, 0.0])
  assert not reference.in_hull_lp(CUBE, [1.0 + 1e-6, 0.5, 0.5])
  assert reference.in_hull_lp([[2.0]], [2.0])
  assert not reference.in_hull_lp([[2.0]], [2.5])
  assert reference.in_hull_lp(1e6 * np.array(TRIANGLE) + 3e6, 1e6 * np.array([0.2, 0.2]) + 3e6)


def _wendel(n_points, d):
  """P(0 not in the hull of n_points symmetric i.i.d. points in R^d) (Wendel 1962)."""
  return sum(math.comb(n_points - 1, k) for k in range(d)) / 2.0**(n_points - 1)


@pytest.mark.parametrize("d,n_points,trials", [(5, 10, 1000), (3, 10, 1000)])
def test_wendel_statistical_oracle(d, n_points, trials):
  p_out = _wendel(n_points, d)
  if n_points == 2 * d:
    assert p_out == 0.5
  else:
    assert p_out == pytest.approx(46 / 512)
  rng = np.random.default_rng(8 + d)
  outside = sum(not reference.in_hull_lp(rng.normal(size=(n_points, d)), np.zeros(d))
                for _ in range(trials))
  sigma = math.sqrt(p_out * (1.0 - p_out) / trials)
  assert abs(outside / trials - p_out) <= 3.0 * sigma, (outside / trials, p_out)
