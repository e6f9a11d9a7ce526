"""Attacks on a digits model: bounds, monotonicity, minimal eps, flip points, the suite's metrics."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

import tfhull.data
from tfhull import attacks
from tfhull import models
from tfhull import training
from tfhull.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def setup():
  ds = tfhull.data.prepare("digits", train_size=500, test_size=100, seed=0)
  res = training.train("mlp:width=128,depth=2", ds,
                       training.TrainConfig(epochs=200, batch_size=64, until_interpolation=True),
                       verbose=0)
  model = res.model
  return model, ds.x_test, ds.y_test, (lambda v: model(v, training=False))


def _acc(model, x, y):
  return float(np.mean(models.predict(model, x).argmax(1) == y))


def _norm(adv, x, norm):
  d = (adv.astype(np.float64) - x).reshape(len(x), -1)
  return np.abs(d).max(1) if norm == "inf" else np.linalg.norm(d, axis=1)


@pytest.mark.parametrize("name,norm,eps", [("pgd", "inf", 0.1), ("pgd", "2", 1.0),
                                           ("fgm", "inf", 0.1), ("fgm", "2", 1.0),
                                           ("bim", "inf", 0.1), ("mim", "2", 1.0)])
def test_attacks_lower_accuracy_within_eps_and_range(setup, name, norm, eps):
  model, x, y, fn = setup
  step = attacks.make_step(name, fn, norm, attacks.IterativeConfig(steps=10))
  adv = attacks.run_batched(step, x, y, eps, batch_size=32)  # 100 = 3 x 32 + 4: padded.
  assert adv.shape == x.shape and adv.dtype == np.float32
  assert np.all(_norm(adv, x, norm) <= eps * (1 + 1e-5))
  assert adv.min() >= 0 and adv.max() <= 1
  clean = _acc(model, x, y)
  assert _acc(model, adv, y) < clean - 0.2


def test_pgd_matches_cleverhans_and_accepts_per_example_eps(setup):
  model, x, y, fn = setup
  step = attacks.make_step("bim", fn, "inf", attacks.IterativeConfig(steps=5, step_size=0.25))
  ours = attacks.run_batched(step, x, y, 0.1, batch_size=100)
  theirs = projected_gradient_descent(fn, tf.constant(x), 0.1, 0.025, 5, np.inf, clip_min=0.0,
                                      clip_max=1.0, y=tf.constant(y), rand_init=False,
                                      sanity_checks=False).numpy()
  np.testing.assert_allclose(ours, theirs, atol=1e-6)
  # Per-example radii: each row stays inside its own eps.
  eps = np.linspace(0.01, 0.2, len(x)).astype(np.float32)
  adv = attacks.run_batched(step, x, y, eps, batch_size=32)
  assert np.all(_norm(adv, x, "inf") <= eps * (1 + 1e-5))


def test_pgd_random_start_follows_the_seed_under_xla(setup):
  """The random start is drawn statelessly from (seed, batch position): XLA honours the seed
  (stateful draws ignore it there), the same seed repeats, another seed differs."""
  _, x, y, fn = setup
  runs = {}
  for seed in (0, 0, 1):
    cfg = attacks.IterativeConfig(steps=0, seed=seed)  # Zero steps: the start itself.
    step = attacks.make_step("pgd", fn, "2", cfg)
    runs.setdefault(seed, []).append(attacks.run_batched(step, x, y, 0.5, batch_size=32))
  np.testing.assert_array_equal(runs[0][0], runs[0][1])
  assert np.abs(runs[0][0] - runs[1][0]).max() > 1e-3
  start = runs[0][0]
  # Batches draw different starts (positions differ): no two batches share one.
  assert not np.allclose(start[:32] - x[:32], start[32:64] - x[32:64])
  assert np.all(_norm(start, x, "2") <= 0.5 * (1 + 1e-5))


def test_random_start_fills_the_ball():
  eps = 0.5
  x = tf.zeros((4000, 8))
  for norm, order in (("inf", np.inf), ("2", 2.0)):
    r = attacks.gradient.random_start(x, order, eps, [3, 7]).numpy()
    n = _norm(r, np.zeros_like(r), norm)
    assert n.max() <= eps * (1 + 1e-6)
    # Uniform in the ball: P(|r| <= eps/2) = 2^-d for the L2 ball in d = 8 dims (0.4 %);
    # for L-inf every coordinate is uniform on [-eps, eps].
    if norm == "2":
      assert np.mean(n <= eps / 2) < 0.02 and np.mean(n >= 0.9 * eps) > 0.5
    else:
      assert abs(r.mean()) < 0.01 and abs(np.mean(np.abs(r) <= eps / 2) - 0.5) < 0.02


def test_spsa_is_gradient_free_and_within_eps(setup):
  model, x, y, fn = setup
  step = attacks.make_step("spsa", fn, "inf", attacks.IterativeConfig(steps=20, spsa_samples=32))
  adv = attacks.run_batched(step, x[:30], y[:30], 0.2, batch_size=1)
  assert np.all(_norm(adv, x[:30], "inf") <= 0.2 + 1e-6) and adv.min() >= 0 and adv.max() <= 1
  assert _acc(model, adv, y[:30]) < _acc(model, x[:30], y[:30]) - 0.05


def test_minimal_eps_flips_and_the_lower_end_does_not(setup):
  model, x, y, fn = setup
  for norm, eps_max in (("inf", 0.3), ("2", 3.0)):
    m = attacks.minimal_eps(model, x, y, norm=norm, eps_max=eps_max, steps=8,
                            cfg=attacks.IterativeConfig(steps=10))
    correct = models.predict(model, x).argmax(1) == y
    ok = m.found & correct
    assert ok.mean() > 0.8
    assert np.all(m.eps[ok] - m.lower[ok] <= m.tol + 1e-6)  # float32 brackets.
    assert np.all(models.predict(model, m.x_adv[ok]).argmax(1) != y[ok])  # Flips at eps.
    assert np.all(_norm(m.x_adv[ok], x[ok], norm) <= m.eps[ok] * (1 + 1e-5) + 1e-6)  # float32.
    # PGD (deterministic) at the lower end of the bracket does not flip.
    step = attacks.make_step("bim", fn, norm, attacks.IterativeConfig(steps=10))
    at_lower = attacks.run_batched(step, x[ok], y[ok], m.lower[ok], batch_size=128)
    assert np.all(models.predict(model, at_lower).argmax(1) == y[ok])
    assert np.all(m.eps[~correct] == 0)


def test_minimal_eps_grows_its_budget_until_every_correct_sample_flips(setup):
  model, x, y, fn = setup
  cfg = attacks.IterativeConfig(steps=5)
  correct = models.predict(model, x).argmax(1) == y
  norm, eps_max = "2", 0.4  # Too small for most samples; the cap is sqrt(64) = 8.
  cap = attacks.eps_cap(norm, int(np.prod(x.shape[1:])))
  m = attacks.minimal_eps(model, x, y, norm=norm, eps_max=eps_max, steps=3, cfg=cfg, cap=cap)
  assert np.all(m.found[correct]), f"L{norm}: {np.sum(~m.found[correct])} not found"
  grown = correct & (m.eps > eps_max)
  assert grown.sum() > len(x) // 2
  width = m.eps[correct] - m.lower[correct]
  assert np.all(width <= m.tol + 1e-6), (width.max(), m.tol)  # eps_max / 2^steps, float32.
  assert np.all(models.predict(model, m.x_adv[correct]).argmax(1) != y[correct])
  assert np.all(_norm(m.x_adv[correct], x[correct], norm) <= m.eps[correct] * (1 + 1e-5) + 1e-6)
  step = attacks.make_step("bim", fn, norm, cfg)
  at_lower = attacks.run_batched(step, x, y, m.lower, batch_size=128)  # PGD fails at `lower`.
  assert np.all(models.predict(model, at_lower[grown]).argmax(1) == y[grown])


def test_minimal_eps_growth_leaves_samples_found_at_eps_max_bit_identical(setup):
  model, x, y, _ = setup
  cfg = attacks.IterativeConfig(steps=3)
  a = attacks.minimal_eps(model, x, y, norm="2", eps_max=4.0, steps=2, cfg=cfg)
  assert a.found.all()  # Every sample flips at eps_max: the growth phase has nothing to do.
  b = attacks.minimal_eps(model, x, y, norm="2", eps_max=4.0, steps=2, cfg=cfg, cap=8.0)
  for field in ("eps", "lower", "x_adv", "found"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert a.tol == b.tol and b.eps_tried == 4.0


def test_flip_points_lie_on_the_boundary_and_on_the_segment(setup):
  model, x, y, fn = setup
  adv = attacks.run_batched(attacks.make_step("pgd", fn, "2", attacks.IterativeConfig()),
                            x, y, 2.0, batch_size=64)
  f = attacks.flip_points(model, x, adv, tol=1e-3)
  assert f.found.mean() > 0.8
  logits = models.predict(model, f.point[f.found])
  top2 = np.sort(logits, axis=1)[:, -2:]
  assert np.all(top2[:, 1] - top2[:, 0] < 1e-3 * 1.01)
  assert np.all(np.abs(f.gap[f.found]) < 1e-3)
  t = f.t[f.found].reshape(-1, 1, 1, 1)
  np.testing.assert_allclose(f.point[f.found], x[f.found] + t * (adv[f.found] - x[f.found]),
                             atol=1e-5)
  assert np.all((f.t[f.found] > 0) & (f.t[f.found] <= 1))
  np.testing.assert_allclose(f.distance[f.found], _norm(f.point[f.found], x[f.found], "2"),
                             rtol=1e-5)
  clean = models.predict(model, x[f.found]).argmax(1)
  assert np.all(f.classes[f.found, 0] == clean) and np.all(f.classes[f.found, 1] != clean)


def test_suite_metrics_records_and_query_sets(setup):
  model, x, y, _ = setup
  cfg = attacks.AttackConfig(attacks=("fgm", "bim", "cw_l2"), norms=("inf", "2"),
                             eps_inf=(0.02, 0.05, 0.1), eps_l2=(0.25, 0.5, 1.0),
                             iterative=attacks.IterativeConfig(steps=10), cw_steps=50,
                             cw_search_steps=3, bisection_steps=6, batch_size=64)
  res = attacks.run_suite(model, x[:40], y[:40], cfg, progress=False)
  m, r = res.metrics, res.records
  correct = models.predict(model, x[:40]).argmax(1) == y[:40]
  assert m["clean_accuracy"] == pytest.approx(correct.mean())
  # One row per (attack, norm, eps, sample): fgm and bim 2 norms x 3 eps, cw 1, min_pgd 2 norms.
  assert len(r["attack"]) == 40 * (2 * 2 * 3 + 1 + 2)
  for norm in ("inf", "2"):
    for attack in ("fgm", "bim"):
      by_eps = m["robust_accuracy"][attack][norm]
      accs = [by_eps[k] for k in sorted(by_eps, key=float)]
      assert all(b <= a + 1e-9 for a, b in zip(accs, accs[1:])), (attack, norm, accs)
      for key, acc in m["robust_accuracy"][attack][norm].items():
        assert m["worst_case_robust_accuracy"][norm][key] <= acc  # Point-wise worst case.
        assert acc <= m["clean_accuracy"]
  rows = (r["attack"] == "bim") & (r["norm"] == "2")
  assert np.all(r["l2"][rows] <= r["eps"][rows] * (1 + 1e-5))
  np.testing.assert_array_equal(r["success"][rows], r["adv_label"][rows] != r["label"][rows])
  assert m["robust_accuracy"]["cw_l2"]["2"]["1"] <= m["clean_accuracy"]
  assert m["minimal_perturbation"]["min_pgd/2"]["l2"]["median"] > 0
  # The budget grows past the grid's eps 0.1 / 1.0: no correctly classified sample is dropped.
  assert m["minimal_not_found"] == 0 and not any("minimal perturbation" in w for w in m["warnings"])
  for norm in ("inf", "2"):
    assert m["minimal_perturbation"][f"min_pgd/{norm}"]["found_fraction"] == 1.0
    assert m["minimal_search"][norm]["cap"] == (1.0 if norm == "inf" else 8.0)
  assert m["flip_points"]["max_gap"] < 1e-3
  sets = attacks.query_sets(r)
  assert set(sets) == {"adv_min_pgd_inf", "adv_min_pgd_2", "adv_cw_l2_2", "flip_min_pgd_inf",
                       "flip_min_pgd_2", "flip_cw_l2_2"}
  images, labels, source = sets["adv_min_pgd_2"]
  assert images.shape[1:] == x.shape[1:] and len(images) == len(labels) == len(source)
  np.testing.assert_array_equal(labels, y[source])


def test_targeted_suite_reaches_its_targets(setup):
  model, x, y, _ = setup
  cfg = attacks.AttackConfig(attacks=("bim",), norms=("2",), eps_l2=(3.0,), targeted=True,
                             iterative=attacks.IterativeConfig(steps=20), flip_points=False)
  res = attacks.run_suite(model, x[:30], y[:30], cfg, progress=False)
  r = res.records
  assert set(r["attack"]) == {"bim"}  # No minimal-perturbation search when targeted.
  assert np.all(r["target"] != r["label"])
  np.testing.assert_array_equal(r["success"], r["adv_label"] == r["target"])
  assert r["success"].mean() > 0.8


@pytest.mark.parametrize("kwargs,message", [
    (dict(attacks=("deepfool",)), "unknown attack 'deepfool'"),
    (dict(eps_inf=(1.5,)), "L-inf eps must be in"),
    (dict(eps_inf=(0.0,)), "L-inf eps must be in"),
    (dict(eps_l2=(100.0,)), "L2 eps must be a number in"),
    (dict(attacks=("spsa",), norms=("2",)), "no attack in"),
    (dict(norms=("1",)), "unknown norm"),
    (dict(iterative=attacks.IterativeConfig(step_size=2.0)), "attack_step_size"),
])
def test_bad_attack_config(setup, kwargs, message):
  model, x, y, _ = setup
  with pytest.raises(UserError, match=message):
    attacks.run_suite(model, x[:4], y[:4], attacks.AttackConfig(**kwargs), progress=False)


def test_bad_attack_inputs(setup):
  model, x, y, _ = setup
  with pytest.raises(UserError, match=r"in \[0, 1\]"):
    attacks.run_suite(model, x[:4] * 2, y[:4], attacks.AttackConfig(), progress=False)
  with pytest.raises(UserError, match="do not fit model"):
    attacks.run_suite(model, np.zeros((4, 4, 4, 1), np.float32), y[:4], attacks.AttackConfig(),
                      progress=False)


def test_two_replica_attack_matches_one_device():
  code = textwrap.dedent("""
      from tfhull import distribute
      distribute.split_cpu(2)
      import numpy as np, tensorflow as tf
      import tfhull.data
      from tfhull import attacks, models
      ds = tfhull.data.prepare("digits", train_size=200, test_size=50, seed=0)
      model_one = models.build("mlp:width=32,depth=1", ds.input_shape, 10, seed=0)
      strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
      with strategy.scope():
        model_two = models.build("mlp:width=32,depth=1", ds.input_shape, 10, seed=0)
      model_two.set_weights(model_one.get_weights())
      cfg = attacks.IterativeConfig(steps=5)
      outs = []
      for model, strat in ((model_one, None), (model_two, strategy)):
        step = attacks.make_step("bim", lambda v, m=model: m(v, training=False), "inf", cfg)
        outs.append(attacks.run_batched(step, ds.x_test, ds.y_test, 0.1, batch_size=8,
                                        strategy=strat))
      assert outs[1].shape == ds.x_test.shape
      print("maxdiff", float(np.abs(outs[0] - outs[1]).max()))
  """)
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert float(out.stdout.split("maxdiff")[-1]) < 1e-5


def test_same_flags_same_adversarial_examples(tmp_path):
  # Determinism is per process (as the CLI runs): two fresh processes, same seed, same bytes.
  code = textwrap.dedent("""
      import sys
      import numpy as np, tensorflow as tf
      tf.config.experimental.enable_op_determinism()
      import tfhull.data
      from tfhull import attacks, models
      ds = tfhull.data.prepare("digits", train_size=100, test_size=20, seed=0)
      model = models.build("mlp:width=32,depth=1", ds.input_shape, 10, seed=0)
      cfg = attacks.AttackConfig(attacks=("pgd", "cw_l2"), norms=("inf", "2"), eps_inf=(0.05,),
                                 eps_l2=(0.5,), bisection_steps=3, cw_steps=20,
                                 cw_search_steps=2, iterative=attacks.IterativeConfig(steps=5),
                                 seed=7)
      res = attacks.run_suite(model, ds.x_test, ds.y_test, cfg, progress=False)
      np.savez(sys.argv[1], **{k: res.records[k] for k in ("x_adv", "flip_point", "eps")})
  """)
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / f"{i}.npz")], env=env,
                            cwd=ROOT, stderr=subprocess.PIPE, text=True) for i in range(2)]
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
  a, b = (np.load(tmp_path / f"{i}.npz") for i in range(2))
  for key in ("x_adv", "flip_point", "eps"):
    np.testing.assert_array_equal(a[key], b[key])
