"""Agreement of models inside vs outside the hull (tfhull.analysis.agreement) on constructed cases."""

import collections
import os
import subprocess
import sys

import numpy as np
import pytest

from tfhull.analysis import agreement as ag
from tfhull.errors import UserError


def _box_models(x):
  """Two 'models' on 2-D points: identical inside the unit square, different outside it."""
  x = np.asarray(x).reshape(len(x), -1)
  a = (x[:, 0] > 0.5).astype(int)
  inside = np.all((x >= 0) & (x <= 1), axis=1)
  b = np.where(inside, a, 1 - a)
  return np.stack([a, b])


@pytest.fixture(scope="module")
def train():
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (60, 2)).astype(np.float32)
  return x, (x[:, 0] > 0.5).astype(int) + 2 * (x[:, 1] > 0.5)


def test_identical_inside_different_outside(train):
  x, y = train
  inside = []
  for same in (True, False):
    mix = ag.mixtures(x, y, 300, same_class=same, seed=1)
    r = ag.agreement(_box_models(mix.points), "mix")
    assert r.disagreement.estimate == 0 and r.disagreement.high == 0 and r.pairwise.estimate == 0
    inside.append(r)
  q = x[:20]
  anchor = np.full_like(q, 0.5)  # Inside the square; t = 3 is outside for all but centre points.
  rays = ag.ray_points(q, anchor, [0.0, 1.0, 3.0])
  assert rays.shape == (3, 20, 2)
  np.testing.assert_allclose(rays[0], anchor)
  np.testing.assert_allclose(rays[1], q, atol=1e-6)
  r0, r1, r3 = (ag.agreement(_box_models(p), f"t={t}") for p, t in zip(rays, (0, 1, 3)))
  assert r0.disagreement.estimate == 0 and r1.disagreement.estimate == 0
  out = np.any((rays[2] < 0) | (rays[2] > 1), axis=1)
  assert out.sum() > 10
  assert r3.disagreement.estimate == pytest.approx(out.mean())  # Exactly the points outside.
  assert 0 < r3.disagreement.low <= r3.disagreement.estimate <= r3.disagreement.high
  text = ag.headline(inside, [r3])
  assert "agree inside the training hull and disagree outside" in text, text
  assert "does not decide" in ag.headline([r3], [r1]) and "overlap" in ag.headline([r1], [r0])


def test_mixtures_are_convex_combinations_inside_the_hull(train):
  x, y = train
  same = ag.mixtures(x, y, 40, same_class=True, parts=3, seed=2)
  mixed = ag.mixtures(x, y, 40, same_class=False, parts=3, seed=2)
  for m in (same, mixed):
    assert np.all(m.weights >= 0)
    np.testing.assert_allclose(m.weights.sum(1), 1)
    np.testing.assert_allclose(m.points, np.einsum("mp,mpd->md", m.weights, x[m.index]),
                               atol=1e-6)
    assert np.all([len(set(r)) == 3 for r in m.index])  # Distinct training points.
  assert np.all(y[same.index] == y[same.index[:, :1]])
  assert np.all([len(set(r)) == 3 for r in y[mixed.index]])  # Three distinct classes.
  np.testing.assert_array_equal(ag.mixtures(x, y, 40, same_class=True, seed=2).index, same.index)
  # The hull solver agrees: each mixture is inside the hull of its training points.
  from tfhull.hull import project_onto_hull  # pylint: disable=import-outside-toplevel
  from tfhull.hull import solver  # pylint: disable=import-outside-toplevel
  res = project_onto_hull(x, np.concatenate([same.points, mixed.points]))
  assert np.all(res.verdict == solver.INSIDE)


def test_pairwise_and_disagreement_exact():
  labels = np.array([[0, 0, 1, 2], [0, 1, 1, 0], [0, 1, 1, 1]])
  np.testing.assert_array_equal(ag.disagrees(labels), [False, True, False, True])
  np.testing.assert_allclose(ag.pairwise(labels), [0, 2 / 3, 0, 1])
  r = ag.agreement(labels, "r")
  assert r.disagreement.estimate == 0.5 and r.pairwise.estimate == pytest.approx(5 / 12)
  assert (r.points, r.models) == (4, 3)
  with pytest.raises(ValueError, match="k >= 2"):
    ag.agreement(labels[:1], "one model")


def test_interval_sanity():
  rng = np.random.default_rng(3)
  a = rng.integers(0, 3, 2000)
  b = np.where(rng.uniform(size=2000) < 0.2, (a + 1) % 3, a)  # 20% disagreement.
  r = ag.agreement(np.stack([a, b]), "r", resamples=500)
  iv = r.disagreement
  assert iv.low < iv.estimate < iv.high and iv.low < 0.2 < iv.high
  assert 0.01 < iv.high - iv.low < 0.06   # ~ 4 sqrt(0.16 / 2000) = 0.036.
  assert r.pairwise.estimate == iv.estimate  # Two models: the same quantity.


def test_ratio_bins():
  b = ag.ratio_bins([0.1, 0.5, 0.55, 0.9, 1.0, 1.2, np.nan], [0.5, 0.6, 1.0])
  np.testing.assert_array_equal(b, [-1, 0, 0, 1, 1, -1, -1])
  with pytest.raises(ValueError, match="increasing"):
    ag.ratio_bins([0.5], [1.0, 0.5])


def test_pipeline_measure_regions_are_consistent(train):
  """pipelines.agreement.measure on two small untrained MLPs: the ray at t = 1 is the test set,
  the d_hull/d_NN bins partition the test points within the edges."""
  import types  # pylint: disable=import-outside-toplevel
  from pipelines import agreement as pipeline  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  x, y = train
  rng = np.random.default_rng(4)
  x_test = rng.uniform(-0.5, 1.5, (30, 2)).astype(np.float32)
  ds = types.SimpleNamespace(x_train=x, y_train=y, x_test=x_test, y_test=np.zeros(30, int))
  proj = np.clip(x_test, 0, 1)  # Stands in for the hull projection (measure only reads these).
  hull = {"distance": np.linalg.norm(x_test - proj, axis=1), "projection": proj,
          "nearest_distance": np.linalg.norm(x_test[:, None] - x[None], axis=2).min(1)}
  nets = [models.build("mlp:width=16,depth=1", (2,), 4, seed=s) for s in (0, 1)]
  opts = {"mixtures": 50, "parts": 3, "ratio_bins": [0.0, 0.5, 1.0], "ray_t": [0.0, 1.0, 2.0]}
  out = pipeline.measure(ds, nets, hull, opts)
  assert [a.region for a in out["inside"]] == ["training images", "same-class mixtures",
                                                "mixed-class mixtures"]
  assert [a.points for a in out["inside"]] == [60, 50, 50]
  allt = out["tests"][0]
  assert allt.points == 30 and out["rays"][1].points == 30
  assert out["rays"][1].disagreement.estimate == allt.disagreement.estimate
  ratio = hull["distance"] / hull["nearest_distance"]
  assert sum(a.points for a in out["tests"][1:]) == np.sum((ratio >= 0) & (ratio <= 1))
  assert len(out["train_accuracy"]) == 2 and len(out["test_accuracy"]) == 2


# End to end: `pipelines.agreement` in-process (TensorFlow is imported once per test process),
# at the smallest sizes that exercise every part; every artifact build counted by component.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC_A, SPEC_B = "mlp:width=32,depth=1", "mlp:width=64,depth=1"
TRAIN, TEST, MIX, RAY_T = 100, 30, 20, (0.0, 1.0, 2.0)
E2E = [f"--flagfile={ROOT}/configs/agreement_digits.flags", f"--train_size={TRAIN}",
       f"--test_size={TEST}", "--batch_size=100", "--learning_rate=0.01", "--epochs=60",
       "--agreement_seeds=0", f"--agreement_mixtures={MIX}",
       f"--agreement_ray_t={','.join(f'{t:g}' for t in RAY_T)}"]


def _run_pipeline(root, models, built, *extra):
  """`python -m pipelines.agreement` with these flags, in-process; (artifact, builds by step)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  from absl.testing import flagsaver  # pylint: disable=import-outside-toplevel
  from pipelines import agreement as pipeline  # pylint: disable=import-outside-toplevel
  built.clear()
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["agreement", *E2E, f"--output_root={root}", f"--agreement_models={models}",
                 *extra])
    art = pipeline.run(["agreement"])
  return art, collections.Counter(built)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  root = str(tmp_path_factory.mktemp("agreement"))
  built = []
  real = artifacts._build  # pylint: disable=protected-access

  def counting(component, *args, **kwargs):
    built.append(component)
    return real(component, *args, **kwargs)
  mp = pytest.MonkeyPatch()
  mp.setattr(artifacts, "_build", counting)
  try:
    runs = {"first": _run_pipeline(root, f"{SPEC_A}|{SPEC_B}", built),
            "again": _run_pipeline(root, f"{SPEC_A}|{SPEC_B}", built)}
    with pytest.raises(UserError) as err:  # The same model, written two ways: refused.
      _run_pipeline(root, f"{SPEC_A}|mlp:depth=1,width=32", built)
    runs["twice"] = (err.value, collections.Counter(built))
    before = {s: sorted(os.listdir(os.path.join(root, s))) for s in os.listdir(root)}
    with pytest.raises(UserError) as err:  # Two classes: no mixed-class mixture of 3 images.
      _run_pipeline(root, f"{SPEC_A}|{SPEC_B}", built, "--classes=3,8")
    after = {s: sorted(os.listdir(os.path.join(root, s))) for s in os.listdir(root)}
    runs["two_classes"] = (err.value, collections.Counter(built), before, after)
  finally:
    mp.undo()
  return root, runs


def _regions(art):
  from tfhull import io  # pylint: disable=import-outside-toplevel
  return {r["region"]: r for r in io.read_json(art.path("metrics.json"))["regions"]}


def test_e2e_shared_artifacts_built_once_and_second_run_cached(e2e):
  _, runs = e2e
  art, built = runs["first"]
  # Two models; the data, pixel features and test hull distances are shared by both.
  assert built == {"data": 1, "train": 2, "features": 1, "hull": 1, "agreement": 1}, built
  again, built = runs["again"]
  assert built == {} and again.uri == art.uri  # Nothing recomputed.
  meta = art.metadata
  assert meta["status"] == "complete" and meta["type"] == "AgreementReport"
  assert os.path.isfile(art.path("metadata.json"))
  assert sorted(meta["inputs"]) == ["data", "hull", "model00", "model01"]
  assert meta["inputs"]["model00"]["uri"] != meta["inputs"]["model01"]["uri"]


def test_e2e_table_counts_and_intervals(e2e):
  import csv  # pylint: disable=import-outside-toplevel
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  art, _ = e2e[1]["first"]
  hull = saved.load_set([artifacts.load(art.metadata["inputs"]["hull"]["uri"])])["pixel", "test"]
  ratio = hull["distance"] / hull["nearest_distance"]
  edges = [0, 0.5, 0.6, 0.7, 0.8, 1]
  bins = ag.ratio_bins(ratio, edges)
  expect = {"training images": TRAIN, "same-class mixtures": MIX, "mixed-class mixtures": MIX,
            "all test images": TEST,
            **{f"test, d_hull/d_NN in [{edges[b]:g}, {edges[b + 1]:g})": int(np.sum(bins == b))
               for b in range(len(edges) - 1) if np.any(bins == b)},
            **{f"ray t = {t:g}": TEST for t in RAY_T}}
  with open(art.path("agreement.csv"), encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert {r["region"]: int(r["points"]) for r in rows} == expect  # One row per point set.
  assert len(rows) == len(expect)
  regions = _regions(art)
  assert {k: r["points"] for k, r in regions.items()} == expect
  for r in rows:  # Full-precision numbers in the CSV, the same as metrics.json's.
    iv = regions[r["region"]]["disagreement"]
    assert [float(r[k]) for k in ("disagreement", "low", "high")] == pytest.approx(
        [iv["estimate"], iv["low"], iv["high"]], rel=1e-12)
  for r in regions.values():
    assert r["models"] == 2
    for iv in (r["disagreement"], r["pairwise"]):
      assert 0 <= iv["low"] <= iv["estimate"] <= iv["high"] <= 1
    assert r["pairwise"]["estimate"] == r["disagreement"]["estimate"]  # Two models: the same.


def test_e2e_disagreement_is_the_models_own(e2e):
  """The reported fractions, recomputed from the two Model artifacts' predictions."""
  import tfhull.data  # pylint: disable=import-outside-toplevel
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  from tfhull import io  # pylint: disable=import-outside-toplevel
  from tfhull import models  # pylint: disable=import-outside-toplevel
  from tfhull.hull import saved  # pylint: disable=import-outside-toplevel
  art, _ = e2e[1]["first"]
  inputs = {k: artifacts.load(v["uri"]) for k, v in art.metadata["inputs"].items()}
  ds = tfhull.data.load(inputs["data"].uri)
  nets = [models.load_artifact(inputs[k]) for k in ("model00", "model01")]
  hull = saved.load_set([inputs["hull"]])["pixel", "test"]

  def frac(x):
    a, b = (models.predict(m, x).argmax(1) for m in nets)
    return float(np.mean(a != b))
  regions = _regions(art)
  assert regions["all test images"]["disagreement"]["estimate"] == pytest.approx(frac(ds.x_test))
  assert regions["training images"]["disagreement"]["estimate"] == pytest.approx(frac(ds.x_train))
  p = np.asarray(hull["projection"], np.float32).reshape(ds.x_test.shape)
  for t in RAY_T:
    assert regions[f"ray t = {t:g}"]["disagreement"]["estimate"] == pytest.approx(
        frac(p + np.float32(t) * (ds.x_test - p))), t
  metrics = io.read_json(art.path("metrics.json"))
  for k, name in enumerate(("model00", "model01")):
    assert metrics["train_accuracy"][k] == pytest.approx(inputs[name].summary["train_accuracy"])
    assert metrics["test_accuracy"][k] == pytest.approx(inputs[name].summary["test_accuracy"])
  # Both interpolate (19 epochs at most here, of 60); so they agree on every training image.
  assert metrics["train_accuracy"] == [1.0, 1.0]
  assert regions["training images"]["disagreement"]["high"] == 0


def test_e2e_one_model_listed_twice_is_refused_before_any_work(e2e):
  _, runs = e2e
  err, built = runs["twice"]
  assert "are the same model; list each model once" in str(err) and "\n" not in str(err)
  assert built == {}, built


def test_e2e_page_calls_the_models_interpolating_only_when_they_are(e2e):
  art, _ = e2e[1]["first"]
  with open(art.path("report.html"), encoding="utf-8") as f:
    page = f.read()
  assert "Agreement of 2 interpolating models" in page  # Both reach 100 % (asserted below).
  assert "not all interpolating" not in page


def test_e2e_too_few_classes_for_the_mixtures_fail_before_training(e2e):
  _, runs = e2e
  err, built, before, after = runs["two_classes"]
  assert "mixed-class mixtures need 3 classes, the training set has 2" in str(err)
  assert "\n" not in str(err)
  assert built == {"data": 1}, built  # The (complete) data artifact only: no model trained.
  new = {s: sorted(set(after[s]) - set(before.get(s, ()))) for s in after}
  assert {s: len(v) for s, v in new.items() if v} == {"data": 1}, new
  assert os.path.isfile(os.path.join(e2e[0], "data", new["data"][0], "metadata.json"))


def test_bad_model_spec_fails_with_one_line_and_writes_nothing(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "pipelines.agreement", *E2E, f"--output_root={tmp_path / 'r'}",
       f"--agreement_models={SPEC_A}|mlp:width=abc"], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=120)
  assert out.returncode == 2, out.stderr[-2000:]
  lines = out.stderr.strip().splitlines()
  assert lines == ["tfhull: error: model spec mlp: width must be an int, got 'abc' (e.g. "
                   "mlp:width=256,depth=2)"], lines
  assert not os.path.exists(tmp_path / "r")


@pytest.mark.parametrize("counts,parts", [([3, 3], 2), ([5, 0, 5], 3), ([2, 2, 2], 3),
                                          ([4, 1, 1], 3), ([1, 1], 2), ([0, 0, 3], 3)])
def test_check_parts_refuses_exactly_what_mixtures_cannot_draw(counts, parts):
  from pipelines import agreement as pipeline  # pylint: disable=import-outside-toplevel
  y = np.repeat(np.arange(len(counts)), counts)
  x = np.zeros((len(y), 2), np.float32)
  try:
    for same in (True, False):
      ag.mixtures(x, y, 4, same_class=same, parts=parts)
    drawable = True
  except ValueError:
    drawable = False
  if drawable:
    pipeline.check_parts(counts, parts)
  else:
    with pytest.raises(UserError, match="--agreement_parts=.*; lower --agreement_parts"):
      pipeline.check_parts(counts, parts)
  assert drawable == ((counts, parts) in (([3, 3], 2), ([4, 1, 1], 3)))
