"""The study graph: true dependencies, typed configs, reuse across runs, versions that cannot go
stale, no duplicate measurement."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfhull import artifacts
from tfhull import study
from tfhull import training
from tfhull import versions
from tfhull.errors import UserError
from tfhull.study import steps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = study.StudyConfig()


def _dirs(root):
  """{step: [finished artifact directories]} under an output root."""
  out = {}
  for step in sorted(os.listdir(root)) if os.path.isdir(root) else ():
    out[step] = sorted(d for d in os.listdir(os.path.join(root, step))
                       if os.path.exists(os.path.join(root, step, d, "metadata.json")))
  return out


def test_ancestors_of_each_step_and_space():
  g = study.build(DEFAULT)
  assert g.ancestors("data") == set()
  assert g.ancestors("train") == {"data"}
  assert g.ancestors("attack") == {"data", "train"}
  # Pixel and Haar spaces need only the data: no model, no attack.
  for space in ("pixel", "haar:1:top32"):
    assert g.ancestors(f"features/{space}") == {"data"}
    assert g.ancestors(f"hull/{space}/test") == {"data", f"features/{space}"}
    assert g.ancestors(f"hull/{space}/test/per_class") == {"data", f"features/{space}"}
    assert g.ancestors(f"hull/{space}/adv_min_pgd_2") == {
        "data", "train", "attack", f"features/{space}", f"features/{space}/attack"}
  assert g.ancestors("hull/layer:features/test") == {"data", "train", "features/layer:features"}
  # A flip split depends on the adversarial split it may alias.
  assert "hull/pixel/adv_min_pgd_2" in g.ancestors("hull/pixel/flip_min_pgd_2")
  hulls = set(g.keys("hull"))
  assert len(hulls) == 3 * 6  # 3 spaces x (test, per-class test, 2 adv, 2 flip).
  assert g.ancestors("analyze") >= hulls | {"attack", "features/layer:features"}
  assert g.ancestors("report") >= hulls | {"analyze"}
  # Topological order: every node after its inputs.
  order = list(g.nodes)
  for key, node in g.nodes.items():
    assert all(order.index(k) < order.index(key) for k in node.inputs.values())


def test_narrow_configs_give_narrow_graphs():
  cfg = dataclasses.replace(
      DEFAULT, features=study.FeaturesConfig(representations=("pixel",), adversarial=False),
      hull=study.HullConfig(query_splits=("test",), per_class=False))
  g = study.build(cfg)
  assert g.closure(g.keys("hull")) == ["data", "features/pixel", "hull/pixel/test"]
  with pytest.raises(UserError, match="has no split 'adv_min_pgd_2'"):
    study.build(dataclasses.replace(cfg, hull=study.HullConfig(query_splits=("adv_min_pgd_2",))))
  with pytest.raises(UserError, match="--representations does not compute"):
    study.build(dataclasses.replace(cfg, hull=study.HullConfig(spaces=("logits",))))
  # Targeted attacks have no minimal perturbations: a pattern matching nothing selects nothing.
  targeted = dataclasses.replace(DEFAULT, attack=study.AttackStepConfig(
      attack=dataclasses.replace(DEFAULT.attack.attack, targeted=True)))
  assert not [k for k in study.build(targeted).keys("hull") if "min_pgd" in k]


def test_grid_expansion():
  assert study.expand([("model", ["a", "b"]), ("label_noise", [0.0, 0.5, 1.0])]) == [
      {"model": m, "label_noise": n} for m in ("a", "b") for n in (0.0, 0.5, 1.0)]
  assert study.expand([("seed", [3])]) == [{"seed": 3}]
  with pytest.raises(ValueError, match="twice"):
    study.expand([("seed", [0]), ("seed", [1])])


def test_train_key_includes_global_batch_and_replicas():
  one, eight = study.build(DEFAULT, replicas=1), study.build(DEFAULT, replicas=8)
  assert one.nodes["train"].params["global_batch"] == 128
  assert eight.nodes["train"].params["global_batch"] == 128 * 8
  assert eight.nodes["train"].params["replicas"] == 8
  data = artifacts._InputRef("0" * 64)  # pylint: disable=protected-access
  fps = {artifacts.fingerprint("train", g.nodes["train"].version, g.nodes["train"].params,
                               {"data": data}) for g in (one, eight)}
  assert len(fps) == 2
  # Nothing downstream of the data changes for pixel-space nodes.
  assert one.nodes["hull/pixel/test"].params == eight.nodes["hull/pixel/test"].params


def test_versions_are_not_stale():
  problems = versions.stale()
  assert not problems, (f"{problems}: run `python -m tfhull.versions --refresh` (it bumps the "
                        "changed parts' VERSION)")


def test_stale_version_check_catches_a_changed_part():
  lock = versions.current()
  assert versions.stale(lock, lock) == []
  changed = {**lock, "hull": {**lock["hull"], "source": "0" * 64}}
  assert any("hull: source changed" in p for p in versions.stale(changed, lock))
  bumped = {**lock, "hull": {"version": "999", "source": lock["hull"]["source"]}}
  assert any("hull: VERSION" in p for p in versions.stale(lock, bumped))
  # What the hash sees: code, not docstrings, comments, layout or the VERSION line.
  a = 'VERSION = "1"\ndef f(x):\n  """Doc."""\n  return x + 1  # note\n'
  b = 'VERSION = "2"\ndef f(x):\n  """Other doc."""\n\n  return (x + 1)\n'
  c = 'VERSION = "1"\ndef f(x):\n  """Doc."""\n  return x + 2\n'
  assert versions.tree_hash([("m.py", a)]) == versions.tree_hash([("m.py", b)])
  assert versions.tree_hash([("m.py", a)]) != versions.tree_hash([("m.py", c)])
  # Every step's key names the versions of the parts it calls.
  g = study.build(DEFAULT)
  assert f"hull:{versions.version('hull')}" in g.nodes["hull/pixel/test"].version
  assert "training:" in g.nodes["train"].version and "models:" in g.nodes["train"].version


def _tiny(root, width):
  return study.StudyConfig(
      data=study.DataConfig(train_size=200, test_size=40),
      train=study.TrainStepConfig(model=f"mlp:width={width},depth=1",
                                  training=training.TrainConfig(epochs=3)),
      features=study.FeaturesConfig(representations=("pixel", "haar:1:top32", "layer:features"),
                                    adversarial=False),
      hull=study.HullConfig(query_splits=("test",), per_class=False, working_set_size=64),
      run=study.RunConfig(output_root=str(root)))


def test_step_alone_and_reuse_across_models(tmp_path, monkeypatch):
  builds = []
  real = steps.hull

  def counting(node, *args):
    builds.append(node.key)
    return real(node, *args)

  monkeypatch.setattr(steps, "hull", counting)
  # One space's hull alone: only its ancestors' artifacts exist afterwards.
  cfg = _tiny(tmp_path, 8)
  g = study.build(cfg)
  done = study.run(g, ["hull/pixel/test"], cfg)
  assert list(done) == ["data", "features/pixel", "hull/pixel/test"]
  assert {k: len(v) for k, v in _dirs(tmp_path).items()} == {"data": 1, "features": 1, "hull": 1}
  # A width sweep: pixel and Haar test hulls are solved once, the feature space's per model.
  for width in (8, 16):
    cfg = _tiny(tmp_path, width)
    done = study.run(study.build(cfg), ["hull"], cfg)
  assert sorted(builds) == sorted(["hull/pixel/test", "hull/haar:1:top32/test",
                                   "hull/layer:features/test", "hull/layer:features/test"])
  assert {k: len(v) for k, v in _dirs(tmp_path).items()} == {
      "data": 1, "train": 2, "features": 4, "hull": 4}
  art = done["hull/pixel/test"]
  assert art.summary["space"] == "pixel" and art.summary["queries"] == 40
  assert set(art.metadata["inputs"]) == {"points", "queries"}


def test_flip_split_aliased_to_its_adversarial_split(tmp_path):
  """A flip split equal to its adversarial split (within tolerance) is not solved again; its
  bounds are the adversarial split's, widened by each row's deviation, and still certified."""
  from tfhull import io  # pylint: disable=g-import-not-at-top
  from tfhull import representations  # pylint: disable=g-import-not-at-top
  from tfhull.hull import saved  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  train, test = rng.random((60, 5)), rng.random((8, 5)) + 1.0
  adv = test + 0.2
  src = np.arange(8)
  cfg = dataclasses.replace(DEFAULT, hull=study.HullConfig(working_set_size=32))

  def features_art(name, splits, labels):
    out = tmp_path / name
    out.mkdir()
    representations.save(str(out), [representations.Space("pixel", splits, {})], labels, 2)
    return artifacts.Artifact(str(out), {"summary": {}})

  base = features_art("base", {"train": train.astype(np.float32),
                               "test": test.astype(np.float32)},
                      {"train": np.arange(60) % 2, "test": np.arange(8) % 2})

  def measure(flip, tol):
    attack = features_art(f"attack{tol}{flip[0, 0]}", {
        "adv_min_pgd_2": adv.astype(np.float32), "flip_min_pgd_2": flip.astype(np.float32)},
        {"adv_min_pgd_2": src % 2, "adv_min_pgd_2_source": src, "flip_min_pgd_2": src % 2,
         "flip_min_pgd_2_source": src})
    nodes = {}
    for split in ("adv_min_pgd_2", "flip_min_pgd_2"):
      params = {"space": "pixel", "split": split, "kind": "global", "alias_tol": tol}
      node = study.Node(f"hull/pixel/{split}", {}, params, steps.hull)
      inputs = {"points": base, "queries": attack}
      if split.startswith("flip"):
        inputs["alias"] = nodes["adv_min_pgd_2"]
      out = tmp_path / f"{split}{tol}{flip[0, 0]}"
      out.mkdir()
      summary = steps.hull(node, cfg, inputs, str(out))
      nodes[split] = artifacts.Artifact(str(out), {"summary": summary})
    return nodes, saved.load_set(nodes.values())

  near = adv + rng.normal(size=adv.shape) * 1e-4
  nodes, measured = measure(near, 0.05)
  entry = io.read_json(os.path.join(nodes["flip_min_pgd_2"].uri, "hull.json"))["entries"][0]
  assert entry["kind"] == "alias" and entry["alias_of"] == "adv_min_pgd_2"
  assert nodes["flip_min_pgd_2"].summary["alias_of"] == "adv_min_pgd_2"
  flip = measured[("pixel", "flip_min_pgd_2")]
  exact = saved.measure(train, None, near, None, 2, False, cfg.hull.solver(), None)[0]
  assert np.all(flip["lower_bound"] <= exact["distance"] + 1e-9)
  assert np.all(exact["distance"] <= flip["upper_bound"] + 1e-9)
  assert flip["outside"].all()
  # Farther than the tolerance: measured on its own.
  far = adv + 0.05
  nodes, measured = measure(far, 0.05)
  entry = io.read_json(os.path.join(nodes["flip_min_pgd_2"].uri, "hull.json"))["entries"][0]
  assert entry["kind"] == "global" and "alias_of" not in measured[("pixel", "flip_min_pgd_2")]


def test_pixel_hull_alone_creates_no_model_or_attack(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run(
      [sys.executable, "-m", "components.hull", f"--output_root={tmp_path}",
       "--representations=pixel", "--hull_query_splits=test", "--nohull_per_class",
       "--nofeatures_adversarial", "--train_size=200", "--test_size=30"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert {k: len(v) for k, v in _dirs(tmp_path).items()} == {"data": 1, "features": 1, "hull": 1}
  hull_dir, = _dirs(tmp_path)["hull"]
  meta = json.load(open(os.path.join(tmp_path, "hull", hull_dir, "metadata.json")))
  assert meta["summary"]["queries"] == 30 and meta["params"]["space"] == "pixel"


def test_flag_defaults_give_the_default_study_config():
  from components import common  # pylint: disable=g-import-not-at-top
  common.define_all()
  cfg = common.study_config(common.FLAGS.flag_values_dict())
  assert dataclasses.replace(cfg, run=study.RunConfig()) == DEFAULT
  assert cfg.run.output_root == "runs/digits_mlp" and "--hull_rel_tol=0.0001" in cfg.run.flags
