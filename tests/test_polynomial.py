"""The polynomial-boundary study: exact fits, minimum norm, disagreement outside the hull."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tfhull.data
from tfhull import artifacts
from tfhull import io
from tfhull.errors import UserError
from tfhull.report import polynomial as polynomial_report
from tfhull.studies import polynomial
from tfhull.studies import toy2d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def moons():
  return tfhull.data.prepare("toy2d:moons", train_size=45, test_size=60, seed=0)


def test_monomial_features():
  x = np.array([[0.0, 1.0], [1.0, 0.5]])
  phi = polynomial.features(x, 3, lo=np.zeros(2), hi=np.ones(2))
  assert phi.shape == (2, polynomial.num_monomials(3)) == (2, 10)
  np.testing.assert_allclose(phi[:, 0], 1.0)  # The constant term.
  z = 2 * x - 1  # Mapped to [-1, 1]^2.
  assert any(np.allclose(phi[:, j], z[:, 0] ** 2 * z[:, 1]) for j in range(10))


def test_fits_below_at_and_above_the_training_size(moons):
  # 45 points: degree 5 has 21 monomials, degree 8 has 45, degree 12 has 91.
  r = polynomial.run_study(moons.x_train, moons.y_train, moons.x_test, moons.y_test,
                           degrees=(5, 8, 12), inits=3, resolution=60)
  names = list(r.fit_names)
  mn, gd = names.index("min_norm"), [names.index(f"gd_init{i}") for i in range(3)]
  assert r.monomials == (21, 45, 91)
  assert not r.exact[0].any()                      # Fewer monomials than points: no exact fit,
  assert (r.labels[0, gd] == r.labels[0, mn]).all()  # and every GD start lands on the same one.
  for d in (1, 2):                                 # As many or more: min-norm and GD fit exactly,
    assert r.exact[d, [mn, *gd]].all()
    assert r.train_accuracy[d, [mn, *gd]].min() == 1.0
    exact_norms = r.norms[d][r.exact[d]]
    assert r.norms[d, mn] == pytest.approx(exact_norms.min())  # min-norm has the smallest norm.
  # Above n, exact fits from different starts differ, and more outside the hull than inside.
  at = r.disagreement_by_degree[12]
  assert at["outside"] > at["inside"] and at["outside"] > 0.01
  for p in r.pairs:
    d = r.degrees.index(p["degree"])
    a, b = names.index(p["a"]), names.index(p["b"])
    assert p["outside"] == pytest.approx(
        toy2d.disagreement(r.labels[d, a], r.labels[d, b], r.inside)["outside"])
  # The disagreement is over every fit that classifies all training points, ridge included.
  for d, k in enumerate(r.degrees):
    fits = {names[f] for f in range(len(names)) if r.train_accuracy[d, f] == 1.0}
    paired = {n for p in r.pairs if p["degree"] == k for n in (p["a"], p["b"])}
    assert paired == (fits if len(fits) > 1 else set()), k
  text, _ = polynomial_report.statement(r)
  compared = [v for v in r.disagreement_by_degree.values() if v["inside"] is not None]
  more = {v["outside"] > v["inside"] for v in compared}
  assert text.startswith("Mixed") == (more == {True, False}), text


def test_bad_input(moons):
  with pytest.raises(UserError, match="needs 2-D points"):
    polynomial.run_study(np.zeros((5, 3)), np.zeros(5, int), np.zeros((2, 3)), np.zeros(2, int),
                         degrees=(2,))
  with pytest.raises(UserError, match="two classes"):
    polynomial.run_study(moons.x_train, moons.y_train + 1, moons.x_test, moons.y_test,
                         degrees=(2,))


def test_pipeline_end_to_end(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-m", "pipelines.polynomial", f"--output_root={tmp_path}",
                        "--poly_resolution=50"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  art_dir, = [os.path.join(tmp_path, "polynomial", d)
              for d in os.listdir(tmp_path / "polynomial")]
  art = artifacts.load(art_dir, "PolynomialStudy")
  assert art.summary["n_train"] == 91 and art.summary["monomials"]["12"] == 91
  assert art.summary["min_norm_is_smallest"]
  html = open(art.path("report.html")).read()
  assert html.count("data:image/png;base64,") == 1
  assert polynomial_report.INTRO[:60] in html and "adversarial examples" not in html
  assert "ridge included" in html
  z = io.load_npz(art.path("polynomial.npz"))
  assert z["labels"].shape == (3, 5, 2500)
