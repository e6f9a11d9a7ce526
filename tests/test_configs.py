"""Every flagfile in configs/ parses and passes every step's flag checks."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.flags")))

CHECK = """
import json, sys
from absl import flags
from components import common
from pipelines import sweep  # Defines every flag and --sweep, for the sweep configs.
from pipelines import agreement  # Defines --agreement_*, for the agreement configs.
from tfhull import study
results = {}
for path in sys.argv[1:]:
  flags.FLAGS.unparse_flags()
  try:
    flags.FLAGS(["prog", "--flagfile=" + path])
    if flags.FLAGS.sweep:  # Every grid point's study, checked as the sweep checks it.
      sweep.study_configs(sweep.parse_axes(flags.FLAGS.sweep), common.values())
    elif flags.FLAGS["agreement_models"].present:  # Every model's study, as the pipeline checks.
      o = agreement.settings()
      agreement.study_configs(common.study_config(), o["models"], o["seeds"])
    else:
      study.check(common.study_config(), ["report"])
    results[path] = "ok"
  except Exception as e:  # Reported per config.
    results[path] = f"{type(e).__name__}: {e}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def checked():
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", CHECK, *CONFIGS], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_expected_configs_exist():
  names = {os.path.basename(c) for c in CONFIGS}
  assert {"digits_mlp.flags", "mnist_mlp.flags", "mnist_cnn.flags", "cifar10_resnet20.flags",
          "cifar10_wrn_tpu.flags", "sweep_digits_mlp.flags", "sweep_cifar10_wrn.flags",
          "sweep_memorization_digits.flags", "sweep_corruption_digits.flags",
          "sweep_cifar10_wrn_tpu.flags", "agreement_digits.flags"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_config_parses_and_checks(checked, config):
  assert checked[config] == "ok"


def test_a_bad_config_is_reported(tmp_path, checked):
  del checked
  bad = tmp_path / "bad.flags"
  bad.write_text("--model=mlp:width=abc\n")
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", CHECK, str(bad)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
  assert "width must be an int" in json.loads(out.stdout.strip().splitlines()[-1])[str(bad)]
