"""The hull solver's verdicts and certificate: mutual exclusion, running-max lower bound,
worst-case rounding allowance under injected matmul error."""

import numpy as np
import pytest

from tfhull import hull
from tfhull.hull import certificate
from tfhull.hull import pricing
from tfhull.hull import reference
from tfhull.hull import solver


def _exact(points, queries):
  return np.array([reference.min_norm_point(points.astype(np.float64),
                                            x.astype(np.float64)).distance for x in queries])


def test_verdicts_are_mutually_exclusive_on_the_unit_square():
  square = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
  # Just above the top edge (distance 1e-6, below the default abs_tol 5e-5), just below it,
  # far above it, the centre.
  queries = np.array([[0.5, 1 + 1e-6], [0.5, 1 - 1e-6], [0.5, 2.0], [0.5, 0.5]], np.float32)
  res = hull.project_onto_hull(square, queries)
  # Certified outside wins over eps-inside: the lower bound proves the query is outside.
  assert res.lower_bound[0] > 0 and res.upper_bound[0] <= res.abs_tol[0]
  np.testing.assert_array_equal(res.outside, [True, False, True, False])
  np.testing.assert_array_equal(res.inside, [False, True, False, True])
  np.testing.assert_array_equal(res.verdict, [solver.OUTSIDE, solver.INSIDE, solver.OUTSIDE,
                                              solver.INSIDE])
  np.testing.assert_array_equal(res.verdict_names, ["outside", "inside", "outside", "inside"])
  exclusive = res.outside.astype(int) + res.inside.astype(int) + res.undetermined.astype(int)
  np.testing.assert_array_equal(exclusive, 1)
  np.testing.assert_allclose(res.distance, [1e-6, 0, 1, 0], atol=5e-8)
  assert res.counts() == {"outside": 2, "inside": 2, "undetermined": 0, "unconverged": 0}
  summary = res.summary()
  assert summary["outside"] + summary["inside"] + summary["undetermined"] == 4
  m = hull.hull_membership(square, queries)
  np.testing.assert_array_equal(m.verdict, ["outside", "inside", "outside", "inside"])


def test_unconverged_and_undetermined_are_counted():
  rng = np.random.default_rng(1)
  points = rng.standard_normal((3000, 300)).astype(np.float32)
  inside = (rng.dirichlet(np.ones(200), size=4) @ points[:200]).astype(np.float32)
  queries = np.concatenate([inside, 3 * rng.standard_normal((4, 300)).astype(np.float32)])
  res = hull.project_onto_hull(points, queries, max_passes=2, working_set_size=8,
                               atoms_per_pass=2)
  c = res.counts()
  assert c["outside"] + c["inside"] + c["undetermined"] == len(queries)
  assert c["unconverged"] == int(np.sum(~res.converged)) > 0
  assert c["undetermined"] == int(np.sum(res.undetermined)) > 0  # The inside ones, too early.
  assert res.summary()["unconverged"] == c["unconverged"]


def test_lower_bound_is_the_running_maximum_over_passes(monkeypatch):
  """A valid but weaker bound in a later pass must not overwrite a stronger earlier one."""
  rng = np.random.default_rng(2)
  points = rng.standard_normal((400, 12))
  queries = 3 * rng.standard_normal((6, 12))
  seen = []  # Per pass: (batch rows of the live queries it certified, their bounds).
  original = certificate.pass_lower_bound
  first = []

  def weakened(*args, **kwargs):
    lb, top, rn = original(*args, **kwargs)
    xc = args[2]  # (live queries, d) centred queries: only the live ones are certified.
    if not first:
      first.append(xc.copy())
    rows = np.array([int(np.nonzero((first[0] == row).all(1))[0][0]) for row in xc])
    if seen:  # Every pass after the first: a still valid, much weaker bound.
      lb = lb - 0.5 * np.abs(lb) - 1.0
    seen.append((rows, lb.copy()))
    return lb, top, rn

  monkeypatch.setattr(certificate, "pass_lower_bound", weakened)
  res = hull.project_onto_hull(points, queries, rel_tol=1e-9, max_passes=4)
  assert len(seen) >= 2
  # Passes see the scale-normalised problem: bounds in units of 2^e.
  e = solver._scale_exponent(points, points.mean(0), queries, "float32")  # pylint: disable=protected-access
  best = np.full(len(queries), -np.inf)
  last = np.full(len(queries), np.nan)
  count = np.zeros(len(queries), int)
  for rows, lb in seen:
    best[rows] = np.maximum(best[rows], np.ldexp(lb, e))
    last[rows] = np.ldexp(lb, e)
    count[rows] += 1
  np.testing.assert_allclose(res.lower_bound, np.minimum(np.maximum(best, 0), res.upper_bound))
  many = count >= 2  # Queries certified in several passes: not the last pass's bound.
  assert many.sum() >= 3 and np.all(res.lower_bound[many] > last[many])
  assert np.all(res.outside)
  # The hyperplane is the best pass's, so it still separates.
  sep = points @ res.hyperplane_normal.T
  assert np.all(sep <= res.hyperplane_offset[None, :] + 1e-9)


def test_certified_max_covers_the_worst_case_matmul_error():
  """Adversarial scores, each off by the largest error Higham's bound allows, push the true
  maximum out of the candidate list; the certified max still bounds it, the naive one does not."""
  d, u = 1000, np.finfo(np.float32).eps / 2
  rng = np.random.default_rng(3)
  w = np.zeros((1, d))
  w[0, 0] = 1.0
  small = np.zeros((100, d))
  small[:, 0] = 1.0 - 1e-6 * np.arange(100)  # Scores 1 - 1e-6 i, norms ~ 1.
  small[:, 1:] = 1e-3 * rng.standard_normal((100, d - 1))
  big = np.zeros((1, d))
  big[0, 0], big[0, 1] = 1.0 + 1e-4, 100.0  # The true maximum, norm 100.
  a = np.concatenate([small, big])
  true = a @ w[0]
  bounds = certificate.RoundingBounds(d, "float32", float(np.linalg.norm(a, axis=1).max()),
                                  np.zeros(1))
  legal = (certificate.gamma(d, u) + u) * np.linalg.norm(a, axis=1) * np.linalg.norm(w)
  computed = true - legal  # Each score as low as rounding could make it.
  m = 10
  idx = np.argsort(-computed)[:m][None, :]
  vals = computed[idx]
  assert 100 not in idx  # The true maximum fell out of the list.
  naive = max(true[idx].max(), vals[0, -1])
  assert naive < true.max()
  cert, cand = certificate.certified_max(a, np.zeros(d), w, vals, idx, bounds.price * np.ones(1))
  assert cert[0] >= true.max() and cand[0] == pytest.approx(true[idx].max())
  np.testing.assert_allclose(certificate.exact_max(a, np.zeros(d), w, block=7), true.max())


def test_lower_bound_holds_under_injected_pricing_error(monkeypatch):
  """The pricing pass returns top-m lists of scores perturbed by the worst legal error; the
  certified interval must still contain the exact (Wolfe) distance."""
  rng = np.random.default_rng(4)
  d = 784
  points = (rng.random((600, d)) ** 3).astype(np.float32)
  points[:40] *= 4.0  # Points of large norm get the largest allowances.
  queries = np.concatenate([(rng.random((10, d)) ** 3).astype(np.float32),
                            (0.3 * points[40:45] + 0.7 * points[45:50]).astype(np.float32)])
  u = np.finfo(np.float32).eps / 2
  original = pricing.Pricer.__call__
  injected = []

  def perturbed(self, w, nearest, groups=None):
    vals, idx = original(self, w, nearest, groups)
    if nearest:
      return vals, idx
    pts = np.concatenate([c[0][c[2]] for c in self.chunks]).astype(np.float64)  # Centred.
    w64 = w.astype(np.float64)
    true = w64 @ pts.T
    legal = (certificate.gamma(d, u) * np.linalg.norm(pts, axis=1)[None, :]
             * np.linalg.norm(w64, axis=1)[:, None])
    sign = -1.0  # Every score as low as the rounding bound allows.
    scores = true + sign * legal
    m = vals.shape[1]
    new_idx = np.argsort(-scores, axis=1)[:, :m]
    injected.append(np.mean(np.any(new_idx != np.argsort(-true, axis=1)[:, :m], axis=1)))
    return np.take_along_axis(scores, new_idx, axis=1), new_idx.astype(np.int64)

  passes = []
  pass_bound = certificate.pass_lower_bound

  first = []

  def recorded(*args, **kwargs):
    out = pass_bound(*args, **kwargs)
    xc = args[2]  # The live queries of this pass (centred), matched to batch rows.
    if not first:
      first.append(xc.copy())
    rows = np.array([int(np.nonzero((first[0] == row).all(1))[0][0]) for row in xc])
    passes.append((rows, out[0].copy()))
    return out

  monkeypatch.setattr(pricing.Pricer, "__call__", perturbed)
  monkeypatch.setattr(certificate, "pass_lower_bound", recorded)
  res = hull.project_onto_hull(points, queries, certify_candidates=16, max_passes=12,
                               rel_tol=1e-6)
  assert injected and max(injected) > 0  # The error changed some candidate lists.
  exact = _exact(points, queries)
  # Every pass's bound on its own (before the final clamp to the upper bound) is valid.
  e = solver._scale_exponent(points, points.mean(0, dtype=np.float64), queries, "float32")  # pylint: disable=protected-access
  assert len(passes) >= 2
  for rows, lb in passes:
    assert np.all(np.ldexp(lb, e) <= exact[rows] * (1 + 1e-9) + 1e-12)
  assert np.all(res.lower_bound <= exact * (1 + 1e-9) + 1e-12)
  assert np.all(exact <= res.upper_bound * (1 + 1e-9) + 1e-12)
  assert np.all(res.lower_bound <= res.upper_bound)
  assert np.all(res.outside[:10])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lower_bound_never_exceeds_upper_bound(dtype):
  rng = np.random.default_rng(5)
  points = rng.standard_normal((200, 8))
  queries = np.concatenate([points[:5] + 1e-7 * rng.standard_normal((5, 8)),
                            rng.standard_normal((5, 8)) * 5])
  res = hull.project_onto_hull(points, queries, dtype=dtype, rel_tol=1e-8)
  assert np.all(res.lower_bound <= res.upper_bound)
  exact = _exact(points, queries)
  assert np.all(res.lower_bound <= exact * (1 + 1e-9) + 1e-15)


def test_certificate_holds_at_every_scale_in_float32():
  """Issue 16: the whole problem scaled by 1e-20 ... 1e15 (float32 inputs, default float32
  compute). The solver normalises scale internally (a power of two, exact), so lower <= true <=
  upper must hold against a float64 Wolfe solve of the unscaled problem, with finite weights and
  the same verdicts at every scale: convex combinations inside, far points outside."""
  rng = np.random.default_rng(16)
  base = rng.standard_normal((120, 8))
  inside = np.concatenate([rng.dirichlet(np.ones(6), size=3) @ base[:6],
                           0.5 * base[10:11] + 0.5 * base[20:21]])
  outside = np.concatenate([3 * rng.standard_normal((3, 8)), base[30:31] + 0.3])
  queries = np.concatenate([inside, outside])
  for scale in (1e-20, 1e-17, 1e-10, 1.0, 1e11, 1e12, 1e15):
    a32 = (base * scale).astype(np.float32)
    x32 = (queries * scale).astype(np.float32)
    # The exact distance of the float32 problem as given, solved at unit scale in float64.
    true = scale * _exact(a32.astype(np.float64) / scale, x32.astype(np.float64) / scale)
    res = hull.project_onto_hull(a32, x32, progress=False)
    slack = 1e-12 * scale
    assert np.all(res.lower_bound <= true + slack), scale
    assert np.all(true <= res.upper_bound + slack), scale
    assert np.all(res.lower_bound <= res.upper_bound), scale
    assert np.all(np.isfinite(res.weights)) and np.all(res.weights >= 0), scale
    np.testing.assert_allclose(res.weights.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(res.verdict, [solver.INSIDE] * 4 + [solver.OUTSIDE] * 4,
                                  err_msg=f"scale {scale}")
    np.testing.assert_allclose(res.distance[4:], true[4:], rtol=2e-4, err_msg=f"scale {scale}")
    assert np.all(res.distance[:4] <= 1e-5 * scale)
    sep = a32.astype(np.float64) @ res.hyperplane_normal[4:].T  # Outside: the plane separates.
    assert np.all(sep <= res.hyperplane_offset[None, 4:] * (1 + 1e-9) + 1e-9 * scale)


def test_out_of_range_scales_raise_one_line_user_errors():
  from tfhull.errors import UserError  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(17)
  points = rng.standard_normal((50, 4)).astype(np.float32)
  far = np.full((1, 4), 1e15, np.float32)  # 1e15 x the points' spread: beyond float32's range.
  with pytest.raises(UserError, match="farther from the points' mean") as err:
    hull.project_onto_hull(points, far, progress=False)
  assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
  huge = rng.standard_normal((50, 4)) * 1e300  # float64 spread beyond [1e-280, 1e280].
  with pytest.raises(UserError, match="accepted range"):
    hull.project_onto_hull(huge, huge[:2], progress=False)
