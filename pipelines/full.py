r"""The linear pipeline: every step of the study in order, artifacts passed along.

  python -m pipelines.full                                   # digits, offline default
  python -m pipelines.full --flagfile=configs/digits_mlp.flags --output_root=/tmp/run

Each step is a component (`components/<name>.py`); a step whose artifact already exists for the
same params and inputs is a cache hit. At the end the location of every artifact is printed.
"""


from absl import app
from absl import flags
from absl import logging

from components import common
from components import analyze
from components import attack
from components import data
from components import features
from components import hull
from components import report
from components import train

# Pipeline order. Every component's flags are defined here, once, so that one flagfile drives the
# whole pipeline and each component run alone (`python -m components.<name>`).
STEPS = (data, train, attack, features, hull, analyze, report)
for _step in STEPS:
  _step.define_flags()

FLAGS = flags.FLAGS


def run_until(last: str, argv=()) -> dict:
  """Runs the steps up to and including `last`; returns {step name: Artifact}."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  names = [s.NAME for s in STEPS]
  if last not in names:
    raise ValueError(f"unknown step {last!r}; steps are {names}")
  steps = STEPS[:names.index(last) + 1]
  for step in steps:
    step.check_flags()  # Every bad flag fails here, before any step writes anything.
  common.apply_determinism()
  if common.STRATEGY.value != "default":
    common.strategy()  # So does an unreachable TPU.
  done = {}
  for step in steps:
    logging.info("=== step %s", step.NAME)
    done[step.NAME] = step.run(done)
  width = max(len(n) for n in done)
  print("\nArtifacts:")
  for name, art in done.items():
    print(f"  {name:<{width}}  {art.uri}")
    for key, value in _headline(art).items():
      print(f"  {'':<{width}}    {key}: {value}")
  if "report" in done:
    print(f"\nReport: {done['report'].path('report.html')}")
  return done


def _headline(art) -> dict:
  return {k: _short(v) for k, v in art.summary.items() if k in art.summary.get("headline", ())}


def _short(value):
  if isinstance(value, float):
    return f"{value:.4g}"
  if isinstance(value, dict):
    return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
  return value


def main(argv):
  run_until(STEPS[-1].NAME, argv)


if __name__ == "__main__":
  app.run(common.exit_on_user_error(main))
