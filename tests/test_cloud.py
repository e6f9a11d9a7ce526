"""Cloud runs on one CPU: TPU-VM mode, result order under any topology, chief-only commits,
float32 measurement after bfloat16 training, steps_per_execution."""

import json
import os
import threading

import numpy as np
import pytest

from tfhull import artifacts
from tfhull import distribute
from tfhull.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- TPU -------------------------------------------------------------------------------------

def test_tpu_local_is_passed_through_as_tpu_vm_mode(monkeypatch):
  import tensorflow as tf
  seen = []

  def resolver(tpu=None, **kw):
    seen.append(tpu)
    raise ValueError("stop here")

  monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", resolver)
  for flag in ("local", ""):
    with pytest.raises(UserError):
      distribute.get_strategy("tpu", flag)
  assert seen == ["local", "local"]
  assert distribute.tpu_resolver_name("my-tpu") == "my-tpu"


def test_tpu_local_without_a_tpu_is_one_line_user_error():
  with pytest.raises(UserError) as e:
    distribute.get_strategy("tpu", "local")
  message = str(e.value)
  assert "\n" not in message
  assert "no TPU on this machine" in message
  assert "Please provide a TPU Name" not in message


def test_tpu_requirements_are_one_consistent_install():
  """requirements-tpu.txt: the TPU TensorFlow build, no generic `tensorflow` or `tf-keras` (which
  would pull the generic wheel over it), and setup.cfg's pin for every other shared package."""
  import configparser
  import re
  reqs = {}
  for line in open(os.path.join(ROOT, "requirements-tpu.txt")):
    line = line.split("#")[0].strip()
    if line:
      name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()
      reqs[name.lower().replace("_", "-")] = spec
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(ROOT, "setup.cfg"))
  pins = {}
  for line in cfg["options"]["install_requires"].split("\n"):
    if line.strip():
      name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line.strip()).groups()
      pins[name.lower().replace("_", "-")] = spec
  assert reqs["tensorflow-tpu"] == "==2.20.0" and reqs["tensorboard"] == "==2.20.0"
  assert "tensorflow" not in reqs and "tf-keras" not in reqs
  assert "google-api-python-client" in reqs
  for name, spec in pins.items():
    if name not in ("tensorflow", "tensorboard", "tf-keras"):
      assert reqs.get(name) == spec, name
  doc = open(os.path.join(ROOT, "docs", "cloud.md")).read()
  assert "pip install -r requirements-tpu.txt" in doc and "--no-deps" in doc


# --- Result order ----------------------------------------------------------------------------

def _layout(n_hosts, per_host, rows=3):
  """A global batch sharded like a distributed dataset on n_hosts hosts ((replica, host) order),
  and its per-replica chunks listed host by host, as experimental_local_results returns them."""
  batch = np.arange(n_hosts * per_host * rows * 2).reshape(-1, 2)
  minibatches = np.split(batch, n_hosts * per_host)
  local = [minibatches[r * n_hosts + h] for h in range(n_hosts) for r in range(per_host)]
  return batch, local


@pytest.mark.parametrize("hosts,per_host", [(1, 1), (1, 4), (2, 1), (2, 4), (4, 8), (3, 2)])
def test_order_replica_chunks_undoes_host_replica_layouts(hosts, per_host):
  batch, local = _layout(hosts, per_host)
  np.testing.assert_array_equal(distribute.order_replica_chunks(local, per_host), batch)
  if hosts > 1 and per_host > 1:  # The naive concatenation is wrong here.
    assert not np.array_equal(np.concatenate(local), batch)


def test_in_input_order_on_a_simulated_tpu_pod_and_on_one_device():
  class Extended:
    num_hosts, num_replicas_per_host = 2, 4

  class TPUStrategyPod:  # Recognised by its class name, like Keras does.
    extended = Extended()
    num_replicas_in_sync = 8

    def experimental_local_results(self, value):
      return value

  batch, local = _layout(2, 4)
  np.testing.assert_array_equal(distribute.in_input_order(TPUStrategyPod(), local), batch)
  np.testing.assert_array_equal(distribute.in_input_order(None, batch), batch)
  import tensorflow as tf
  np.testing.assert_array_equal(
      distribute.in_input_order(tf.distribute.get_strategy(), tf.constant(batch)), batch)
  with pytest.raises(ValueError):
    distribute.order_replica_chunks(local[:3], 2)


# --- float32 measurement after bfloat16 training ---------------------------------------------

def test_measurement_is_float32_after_bfloat16_training(tmp_path):
  import tfhull.data
  from tfhull import models
  from tfhull import training
  from tfhull.attacks import minimal
  ds = tfhull.data.prepare("digits", train_size=128, test_size=32, seed=0)
  res = training.train("mlp:width=32,depth=1", ds,
                       training.TrainConfig(epochs=1, batch_size=32, mixed_precision=True),
                       verbose=0)
  assert res.model.get_layer("features").compute_dtype == "bfloat16"
  path = str(tmp_path / models.MODEL_FILE)
  models.save(res.model, path)
  model = models.load(path)
  assert models.compute_dtype(model) == "float32"
  assert models.trained_dtype_policy(model) == "mixed_bfloat16"
  reference = models.build("mlp:width=32,depth=1", ds.input_shape, ds.num_classes, seed=0)
  reference.set_weights(model.get_weights())  # The same weights, built at float32.
  feats = models.predict(model, ds.x_test, layer="features")
  assert model(ds.x_test[:2]).dtype == "float32"
  np.testing.assert_array_equal(feats, models.predict(reference, ds.x_test, layer="features"))
  # Flip points between test points of different predicted classes: top-two logits tie within
  # 1e-3 in true float32 (bfloat16 spacing near 10 is 0.06).
  pred = models.predict(model, ds.x_test).argmax(1)
  i, j = np.nonzero(pred[:, None] != pred[None, :])
  keep = np.unique(i, return_index=True)[1][:8]
  flips = minimal.flip_points(model, ds.x_test[i[keep]], ds.x_test[j[keep]], tol=1e-3)
  assert flips.found.all()
  logits = np.sort(models.predict(reference, flips.point).astype(np.float64), axis=1)
  assert np.all(logits[:, -1] - logits[:, -2] <= 1e-3 + 1e-5)


# --- Multi-worker: the chief alone commits ---------------------------------------------------

def _tf_config(kind, index, chief=False):
  spec = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
  if chief:
    spec["chief"] = ["127.0.0.1:3"]
  return json.dumps({"cluster": spec, "task": {"type": kind, "index": index}})


def test_chief_check_from_tf_config(monkeypatch):
  from tfhull import cluster
  monkeypatch.delenv("TF_CONFIG", raising=False)
  assert cluster.is_chief() and not cluster.is_multi_worker()
  for kind, index, has_chief, want in [("worker", 0, False, True), ("worker", 1, False, False),
                                       ("worker", 0, True, False), ("chief", 0, True, True)]:
    monkeypatch.setenv("TF_CONFIG", _tf_config(kind, index, has_chief))
    assert cluster.is_multi_worker() and cluster.is_chief() is want, (kind, index, has_chief)
  monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]},
                                              "task": {"type": "worker", "index": 0}}))
  assert cluster.is_chief()
  monkeypatch.setenv("TF_CONFIG", "{not json")
  with pytest.raises(UserError, match="TF_CONFIG"):
    cluster.is_chief()


def _files(root):
  return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root)
                for f in fs)


@pytest.mark.parametrize("force", [False, True])
def test_non_chief_worker_writes_nothing_and_returns_the_chiefs_artifact(tmp_path, monkeypatch,
                                                                         force):
  monkeypatch.setenv("TF_CONFIG", _tf_config("worker", 1))  # This process: a non-chief worker.
  monkeypatch.setattr(artifacts, "FOLLOW_POLL_S", 0.01)
  root = str(tmp_path / "root")
  args = ("step", "1", "Thing", {"p": 1}, {}, root)
  if force:  # An older artifact in place: the worker must wait for the chief's new one.
    old = artifacts.run(*args, lambda out: _write(out, "old"), chief=True)
  worker_dirs, result = [], {}

  def worker_build(out, work):
    worker_dirs.append(out)
    assert os.path.isdir(work)
    return _write(out, "worker")

  worker = threading.Thread(target=lambda: result.update(art=artifacts.run(
      *args, worker_build, resumable=True, force=force, lock_timeout=60)))
  before = _files(root) if force else []
  worker.start()
  while not worker_dirs and worker.is_alive():
    worker.join(0.01)
  worker.join(0.3)
  assert worker.is_alive()  # Built, waiting for the chief.
  assert (_files(root) if os.path.exists(root) else []) == before  # Wrote nothing there.
  assert not os.path.exists(worker_dirs[0])  # Its private output is gone.
  chief = artifacts.run(*args, lambda out, work: _write(out, "chief"), resumable=True,
                        force=force, chief=True)
  worker.join(30)
  assert not worker.is_alive()
  art = result["art"]
  assert art.uri == chief.uri and art.summary == {"who": "chief"}
  assert open(art.path("x.txt")).read() == "chief"
  if force:
    assert old.metadata["checksum"] != art.metadata["checksum"]


def _write(out, who):
  with open(os.path.join(out, "x.txt"), "w") as f:
    f.write(who)
  return {"who": who}


def test_non_chief_worker_reuses_a_committed_artifact_without_building(tmp_path, monkeypatch):
  root = str(tmp_path / "root")
  args = ("step", "1", "Thing", {"p": 1}, {}, root)
  first = artifacts.run(*args, lambda out: _write(out, "chief"), chief=True)
  monkeypatch.setenv("TF_CONFIG", _tf_config("worker", 1))
  files = _files(root)
  art = artifacts.run(*args, lambda out: pytest.fail("a cache hit builds nothing"))
  assert art.uri == first.uri and _files(root) == files


# --- steps_per_execution ---------------------------------------------------------------------

def test_steps_per_execution_does_not_change_the_weights():
  import tfhull.data
  from tfhull import training
  assert [training.execution_steps(6, w) for w in (1, 2, 3, 4, 5, 6, 64)] == [1, 2, 3, 3, 3, 6, 6]
  ds = tfhull.data.prepare("digits", train_size=96, test_size=16, seed=0)
  cfg = training.TrainConfig(epochs=2, batch_size=16, optimizer="sgd", learning_rate=0.05,
                             until_interpolation=False)
  one = training.train("mlp:width=16,depth=1", ds, cfg, verbose=0)
  four = training.train("mlp:width=16,depth=1", ds, cfg, verbose=0, steps_per_execution=4)
  assert four.metrics["steps_per_epoch"] == 6 and four.metrics["steps_per_execution"] == 3
  assert int(four.model.optimizer.iterations.numpy()) == 12  # No step past an epoch's end.
  for a, b in zip(one.model.get_weights(), four.model.get_weights()):
    np.testing.assert_array_equal(a, b)
  assert one.history["loss"] == four.history["loss"]
  with pytest.raises(UserError, match="steps_per_execution"):
    training.train("mlp:width=16,depth=1", ds, cfg, verbose=0, steps_per_execution=0)


def test_input_pipeline_holds_uint8_images_with_the_same_batches(monkeypatch):
  from tfhull import training
  rng = np.random.default_rng(0)
  codes = rng.integers(0, 256, (48, 6, 6, 3)).astype(np.uint8)
  codes[0, 0, 0, :] = [0, 255, 128]
  x255 = codes.astype(np.float32) / 255.0  # What the data step stores for uint8 sources.
  x16 = (rng.integers(0, 17, (48, 8, 8, 1)) / 16.0).astype(np.float32)  # Digits.
  y = rng.integers(0, 3, 48)
  got, scale = training.quantized(x255)
  assert scale == 255 and got.dtype == np.uint8 and np.array_equal(got, codes)
  assert training.quantized(x16)[1] == 16
  assert training.quantized(x255 + np.float32(1e-4)) is None

  def batches(x):
    ds = training.input_pipeline(x, y, 3, global_batch=16, augment="flip_crop", seed=3)
    return [b[0].numpy() for b in ds.take(4)]

  for x in (x255, x16):
    small = batches(x)
    monkeypatch.setattr(training, "quantized", lambda x: None)  # The float32 path.
    full = batches(x)
    monkeypatch.undo()
    assert small[0].dtype == np.float32
    for a, b in zip(small, full):
      np.testing.assert_array_equal(a, b)


# --- A real two-process cluster --------------------------------------------------------------

WORKER = """
import json, os, sys
from tfhull import distribute
distribute.split_cpu(2)  # 2 workers x 2 replicas: the layout where naive concatenation is wrong.
import numpy as np, tensorflow as tf
from tfhull import artifacts, attacks
# Two local replicas per worker, as a worker with 2 GPUs has (on CPUs TF uses one device).
from tensorflow.python.distribute import collective_all_reduce_strategy as cars
cars.CollectiveAllReduceExtended._initialize_local_devices = lambda self, resolver, worker: (
    tuple(f"{worker}/device:CPU:{i}" for i in range(2)), "CPU")
strategy = tf.distribute.MultiWorkerMirroredStrategy()
n = 37  # Not a multiple of the global batch (3 x 4 replicas): padded.
x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
y = np.arange(n) % 5
step = lambda xb, yb, eps: xb + tf.cast(yb, tf.float32)[:, None] * 1000.0 + eps[:, None]
eps = np.arange(n, dtype=np.float32) / 4  # Exact sums in float32.

def build(out):
  got = attacks.run_batched(step, x, y, eps, batch_size=3, strategy=strategy, jit_compile=False)
  np.save(os.path.join(out, "got.npy"), got)
  return {"task": json.loads(os.environ["TF_CONFIG"])["task"]["index"]}

art = artifacts.run("order", "1", "Thing", {}, {}, sys.argv[1], build)
got = np.load(art.path("got.npy"))
want = x + y.astype(np.float32)[:, None] * np.float32(1000) + eps[:, None]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "ordered": bool(np.array_equal(
    got, want)), "writer": art.summary["task"]}))
"""


@pytest.mark.slow
def test_two_process_multi_worker_cluster_orders_results_and_only_the_chief_commits(tmp_path):
  import socket
  import subprocess
  import sys
  ports = []
  for _ in range(2):
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      ports.append(s.getsockname()[1])
  root = str(tmp_path / "root")
  procs = []
  for index in range(2):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps({
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index}}))
    procs.append(subprocess.Popen([sys.executable, "-c", WORKER, root], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  assert all(r == {"replicas": 4, "ordered": True, "writer": 0} for r in results), results
  leftovers = [n for n in os.listdir(os.path.join(root, "order")) if "." in n]
  assert leftovers == [], leftovers  # No lock or temporary of either worker left behind.


# Trains, attacks and measures hull distances under `multi_worker_mirrored` (2 workers x 1 CPU
# replica), or, without TF_CONFIG, in one process: training over 2 logical CPUs (the cluster's
# layout: replica r gets slice r of every global batch, so the same weights bit for bit), attack
# and hull on one device (the per-replica attack batches are its batches, the same seeds).
PIPELINE = """
import json, os, sys
from tfhull import cluster, distribute
MULTI = cluster.is_multi_worker()
if not MULTI:
  distribute.split_cpu(2)
import numpy as np, tensorflow as tf
from tfhull import artifacts, attacks, training
from tfhull.attacks import gradient
from tfhull.data import sources
from tfhull.hull import per_class_distances, pricing, project_onto_hull, solver
work = {"pricing_passes": 0, "priced_rows": 0, "candidates": 0,  # This process's pricing work,
        "class_pricing_passes": 0, "class_priced_rows": 0}      # one hull's and per class.
_price = pricing.Pricer.__call__
def counting(self, w, nearest, groups=None):
  vals, idx = _price(self, w, nearest, groups)
  work["pricing_passes"] += 1
  work["priced_rows"] += len(w)
  work["candidates"] += int((idx >= 0).sum())
  return vals, idx
pricing.Pricer.__call__ = counting
_price_classes = pricing.ClassPricer.__call__
def counting_classes(self, w, nearest, groups=None):
  work["class_pricing_passes"] += 1
  work["class_priced_rows"] += len(w)
  return _price_classes(self, w, nearest, groups)
pricing.ClassPricer.__call__ = counting_classes
strategy = (tf.distribute.MultiWorkerMirroredStrategy() if MULTI
            else tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
measure = strategy if MULTI else None
ds = sources.load_digits(seed=0)
ds = ds.replace(x_train=ds.x_train[:192], y_train=ds.y_train[:192], train_index=ds.train_index[:192],
                x_test=ds.x_test[:24], y_test=ds.y_test[:24], test_index=ds.test_index[:24])

def build(out):
  model = training.train("mlp:width=32,depth=1", ds, training.TrainConfig(
      batch_size=16, epochs=2, learning_rate=1e-2, seed=0), strategy=strategy, verbose=0).model
  suite = attacks.run_suite(model, ds.x_test, ds.y_test, attacks.AttackConfig(
      attacks=("pgd", "cw_l2"), norms=("inf", "2"), eps_inf=(0.1,), eps_l2=(), minimal=False,
      flip_points=False, batch_size=8, cw_steps=10, cw_search_steps=2,
      iterative=gradient.IterativeConfig(steps=5)), strategy=measure, progress=False)
  adv = suite.records["x_adv"].reshape(48, -1)  # PGD, then CW-L2 (each replica its batch).
  res = project_onto_hull(ds.x_train_flat, np.concatenate([ds.x_test_flat, adv]),
                          batch_size=8, strategy=measure, progress=False)
  pc = per_class_distances(ds.x_train_flat, ds.y_train, ds.x_test_flat[:8], ds.y_test[:8],
                           num_classes=10, batch_size=2, strategy=measure, progress=False)
  np.savez(os.path.join(out, "numbers.npz"), kernel=model.get_layer("logits").get_weights()[0],
           adv=adv, success=suite.records["success"], distance=res.distance, lower_bound=res.lower_bound, verdict=res.verdict,
           passes=res.passes, iterations=res.iterations, support=res.support,
           class_upper=pc.upper_bound, class_lower=pc.lower_bound, class_verdict=pc.verdict,
           class_passes=pc.passes)
  return {"writer": cluster.task_name()}

art = artifacts.run("cluster", "1", "Numbers", {}, {}, sys.argv[1], build)
np.savez(sys.argv[2], **np.load(art.path("numbers.npz")))
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "writer": art.summary["writer"],
                  **work}))
"""


def _free_ports(n):
  import socket
  ports = []
  for _ in range(n):
    with socket.socket() as s:
      s.bind(("127.0.0.1", 0))
      ports.append(s.getsockname()[1])
  return ports


def _spawn(code, args, tf_config=None):
  import subprocess
  import sys
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  env.pop("TF_CONFIG", None)
  if tf_config is not None:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return json.loads(out.strip().splitlines()[-1])


def test_two_process_cluster_trains_attacks_and_measures_like_one_process(tmp_path):
  """A real 2-worker MultiWorkerMirroredStrategy cluster on 127.0.0.1: the same weights,
  adversarial examples, hull distances, verdicts and pass counts as one process with 2 replicas;
  the hull's queries are split between the workers (each prices its batches against every
  point, so the pricing work adds up to one process's, not twice it); only the chief writes."""
  ports = _free_ports(2)
  root = str(tmp_path / "cluster")
  workers = [_spawn(PIPELINE, [root, str(tmp_path / f"worker{i}.npz")], {
      "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
      "task": {"type": "worker", "index": i}}) for i in range(2)]
  single = _spawn(PIPELINE, [str(tmp_path / "one"), str(tmp_path / "one.npz")])  # Alongside.
  results = [_finish(p) for p in workers]
  one = _finish(single)
  assert one["replicas"] == 2 and all(r["replicas"] == 2 for r in results), results
  assert [r["writer"] for r in results] == ["worker:0", "worker:0"]  # Both return the chief's.
  assert sorted(os.listdir(root)) == ["cluster"]
  assert [n for n in os.listdir(os.path.join(root, "cluster")) if "." in n] == []
  ref = np.load(tmp_path / "one.npz")
  for i in range(2):
    got = np.load(tmp_path / f"worker{i}.npz")
    for key in ref.files:
      np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
  assert (ref["verdict"] == 2).any() and ref["passes"].max() > 1  # Real solves, some outside.
  assert ref["success"][24:].any()  # CW-L2 found adversarials.
  # The work is split, not repeated: each worker priced a share, together one process's.
  assert (ref["class_verdict"] == 2).any()  # Per-class hulls, one solve: shared the same way.
  for key in ("pricing_passes", "priced_rows", "candidates", "class_pricing_passes",
              "class_priced_rows"):
    assert 0 < min(r[key] for r in results) < one[key], (key, results, one)
    assert sum(r[key] for r in results) == one[key], (key, results, one)
