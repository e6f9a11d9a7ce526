"""First contact with the command line: `--help` of every entry point, unsupported URIs."""

import os
import re
import resource
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS = ("data", "train", "attack", "features", "hull", "analyze", "report")
# Entry point -> flags its --help must list (the step's own, a pipeline's own and an upstream one).
EXPECTED = {
    **{f"components.{c}": [] for c in COMPONENTS},
    "pipelines.full": ["dataset", "model", "attacks", "representations", "hull_rel_tol",
                       "ray_points", "report_title", "output_root"],
    "pipelines.sweep": ["sweep", "sweep_last_step", "model", "hull_rel_tol"],
    "pipelines.toy2d": ["toy_widths", "toy_depth", "toy_regimes", "toy_epochs", "dataset"],
    "pipelines.polynomial": ["poly_degrees", "poly_ridge", "poly_inits", "dataset"],
}


def _step_flags(step):
  """The flag names `components.<step>` defines (read from its source, no import needed)."""
  with open(os.path.join(ROOT, "components", f"{step}.py"), encoding="utf-8") as f:
    return re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', f.read())


@pytest.mark.parametrize("entry,flag", [(e, "--help") for e in sorted(EXPECTED)] + [
    ("components.hull", "--helpshort"), ("pipelines.sweep", "-h")])
def test_help_lists_the_entry_points_flags_quickly(entry, flag):
  """Every flag of the entry point's own step (or pipeline) and the run flags, grouped by step,
  in under 3 s: flag definitions import no TensorFlow."""
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.time()
  out = subprocess.run([sys.executable, "-m", entry, flag], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
  seconds = time.time() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  assert out.returncode == 0, out.stderr[-2000:]
  expected = list(EXPECTED[entry]) + ["output_root", "force", "seed"]
  if entry.startswith("components."):
    expected += _step_flags(entry.split(".")[1]) + _step_flags("data")
  listed = set(re.findall(r"^    --(?:\[no\])?(\w+):", out.stdout, re.M))
  assert not set(expected) - listed, (set(expected) - listed, out.stdout[-2000:])
  assert "data step (components.data)" in out.stdout
  assert "tensorflow" not in out.stderr.lower()  # Not imported: no banner, no cuda lines.
  # Under 3 s of wall time on an idle machine (about 1 s measured on 2 cores); a loaded test
  # machine stretches wall time, so the wall limit scales with the load, the CPU time does not.
  assert cpu < 3.0, f"{entry} {flag} used {cpu:.1f} s of CPU"
  load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
  assert seconds < 3.0 * load, f"{entry} {flag} took {seconds:.1f} s (load factor {load:.1f})"


def test_helpfull_stays_absls():
  env = dict(os.environ, PYTHONPATH=ROOT)
  out = subprocess.run([sys.executable, "-m", "components.data", "--helpfull"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
  assert "absl.flags:" in out.stdout and "--dataset" in out.stdout


@pytest.mark.parametrize("uri,ok", [
    ("runs/x", True), ("/abs/x", True), ("file:///tmp/x", True), ("gs://bucket/x", True),
    ("ram://x", False), ("foo://bar", False), ("s3://b/x", False), ("gs://", False)])
def test_output_root_schemes(uri, ok):
  """Unsupported URI schemes are one line naming the supported ones (no TensorFlow needed)."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  from tfhull.errors import UserError  # pylint: disable=import-outside-toplevel
  cfg = study.StudyConfig(run=study.RunConfig(output_root=uri))
  if ok:
    cfg.run.check()
  else:
    with pytest.raises(UserError, match=r"unsupported location.*file://, gs:// and local paths"):
      cfg.run.check()


def test_components_doc_names_every_flag():
  """docs/components.md lists every flag the components and pipelines define."""
  with open(os.path.join(ROOT, "docs", "components.md"), encoding="utf-8") as f:
    doc = f.read()
  names = []
  for folder in ("components", "pipelines"):
    for name in os.listdir(os.path.join(ROOT, folder)):
      if name.endswith(".py"):
        with open(os.path.join(ROOT, folder, name), encoding="utf-8") as f:
          names += re.findall(r'DEFINE_\w+\(\s*"(\w+)"', f.read())
  assert len(names) > 60
  missing = [n for n in names if f"`--{n}`" not in doc]
  assert not missing, missing


def test_heartbeat_marks_silent_phases_only(monkeypatch, caplog):
  """A phase with no log line and no live bar gets a periodic line; one with a bar drawn on a
  terminal does not (without a terminal, bars log their own lines)."""
  import logging  # pylint: disable=import-outside-toplevel
  import tqdm  # pylint: disable=import-outside-toplevel
  from tfhull import console  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(console, "_done", True)
  caplog.set_level(logging.INFO)
  with console.heartbeat("report", every=0.3):
    time.sleep(1.0)
  beats = [r for r in caplog.records if "report: still working" in r.getMessage()]
  assert 2 <= len(beats) <= 4
  caplog.clear()
  monkeypatch.setattr(console, "on_terminal", lambda: True)  # A drawn bar shows progress.
  with tqdm.tqdm(total=1, file=open(os.devnull, "w")), console.heartbeat("hull", every=0.3):
    time.sleep(0.8)
  assert not [r for r in caplog.records if "still working" in r.getMessage()]


_PROGRESS_SCRIPT = """
import time
from absl import logging
from tfhull import console
logging.set_verbosity(logging.INFO)
console._done = True  # The command line's console, without importing TensorFlow.
for _ in console.progress(range(12), desc="slow phase", unit="step"):
  time.sleep(0.1)
for _ in console.progress(range(3), desc="quick phase", unit="step"):
  pass
with console.heartbeat("silent phase"):
  time.sleep(0.7)
"""


def test_progress_without_a_terminal_is_plain_lines():
  """stderr a pipe (CI logs, `> log 2>&1`): no `\\r`-redrawn bars but a log line every
  TFHULL_PROGRESS_SECONDS during a long phase, none for a short one; the heartbeat uses the
  same interval."""
  env = dict(os.environ, PYTHONPATH=ROOT, TFHULL_PROGRESS_SECONDS="0.25")
  out = subprocess.run([sys.executable, "-c", _PROGRESS_SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
  assert out.returncode == 0, out.stderr
  assert "\r" not in out.stderr and "\x1b" not in out.stderr
  lines = [l for l in out.stderr.splitlines() if "slow phase:" in l]
  assert 3 <= len(lines) <= 7, out.stderr
  assert lines[-1].rstrip().endswith("step/s]") and "12/12 (100%)" in lines[-1], lines
  assert "quick phase" not in out.stderr
  assert 1 <= out.stderr.count("silent phase: still working") <= 3, out.stderr


def test_progress_on_a_terminal_is_tqdms_bar(monkeypatch):
  import tqdm  # pylint: disable=import-outside-toplevel
  from tfhull import console  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(console, "on_terminal", lambda: True)
  with open(os.devnull, "w", encoding="utf-8") as devnull:
    bar = console.progress(range(3), desc="x", file=devnull, mininterval=1.0)
    assert isinstance(bar, tqdm.tqdm) and bar.mininterval == 1.0 and bar.fp == devnull
    bar.close()
  monkeypatch.setattr(console, "on_terminal", lambda: False)
  bar = console.progress(range(3), desc="x", mininterval=1.0)
  assert isinstance(getattr(bar.fp, "_wrapped", bar.fp), console._LogLines)
  assert bar.mininterval == console.interval()
  bar.close()


def test_every_progress_bar_goes_through_console_progress():
  """One mechanism: no module but tfhull/console.py builds a tqdm bar itself."""
  offenders = []
  for folder in ("tfhull", "components", "pipelines"):
    for base, _, files in os.walk(os.path.join(ROOT, folder)):
      for name in files:
        path = os.path.join(base, name)
        if name.endswith(".py") and not path.endswith(os.path.join("tfhull", "console.py")):
          with open(path, encoding="utf-8") as f:
            if re.search(r"\btqdm\(", f.read()):
              offenders.append(path)
  assert not offenders, offenders


def test_heartbeat_counts_output_as_progress(monkeypatch, caplog):
  """Keras epoch lines (`console.touch` from a callback) keep the heartbeat quiet."""
  import logging  # pylint: disable=import-outside-toplevel
  from tfhull import console  # pylint: disable=import-outside-toplevel
  monkeypatch.setattr(console, "_done", True)
  caplog.set_level(logging.INFO)
  with console.heartbeat("train", every=0.3):
    for _ in range(10):
      console.touch()
      time.sleep(0.1)
  assert not [r for r in caplog.records if "still working" in r.getMessage()]
