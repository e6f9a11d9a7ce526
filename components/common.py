"""What every component shares: output root, caching flags, input-artifact overrides, error exit.

Each component module `components/NAME.py` defines:
  NAME: step name (also the artifact sub-directory), VERSION: code version of its outputs,
  OUTPUT_TYPE: artifact type, INPUTS: names of upstream artifacts it reads,
  define_flags(): its flags (called once, by `pipelines.full`, so every program knows every flag
    and one flagfile drives the pipeline and each component alone),
  check_flags(): cheap validation (UserError), run for every step before the first one starts,
  run(inputs: dict[str, Artifact]) -> Artifact: flags -> params -> library call, through
    `run_step`.
Run alone, a component computes (or finds in the cache) the upstream artifacts it needs, unless
`--data_artifact`, `--model_artifact` or `--features_artifact` points at one.
"""

import sys
from typing import Any, Callable, Mapping, Optional

from absl import app
from absl import flags

from tfhull import artifacts
from tfhull.errors import UserError

FLAGS = flags.FLAGS

OUTPUT_ROOT = flags.DEFINE_string(
    "output_root", "runs/digits_mlp",
    "Directory (local or gs://) under which every artifact is written as <step>/<fingerprint>/.")
FORCE = flags.DEFINE_list(
    "force", [], "Steps to recompute even when a cached artifact exists ('all' for every step); "
    "replaced artifacts are moved aside, never deleted.")
SEED = flags.DEFINE_integer("seed", 0, "Global seed; the same flags give the same numbers.")
STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy for training, attacks and the hull solver's pricing passes.")
DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", True, "TensorFlow op determinism (tf.config.experimental."
    "enable_op_determinism) for every step: the same flags give the same numbers; turn off for "
    "speed on GPUs.")
TPU = flags.DEFINE_string("tpu", "", "TPU address for --strategy=tpu: a name, grpc://host:8470, "
                          "or 'local' on a TPU VM.")


def apply_determinism() -> None:
  """Turns on TensorFlow op determinism when --deterministic (before any step computes)."""
  if DETERMINISTIC.value:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.experimental.enable_op_determinism()


def strategy():
  """The strategy chosen by --strategy/--tpu (built once per process)."""
  global _STRATEGY
  if _STRATEGY is None:
    from tfhull import distribute  # pylint: disable=g-import-not-at-top
    _STRATEGY = distribute.get_strategy(STRATEGY.value, TPU.value)
  return _STRATEGY


_STRATEGY = None

# Artifact-directory overrides, one per artifact a step can read.
INPUT_DIRS = {
    "data": flags.DEFINE_string("data_artifact", None, "Use this Dataset artifact directory "
                                "instead of running the data step."),
    "train": flags.DEFINE_string("model_artifact", None, "Use this Model artifact directory "
                                 "instead of running the train step."),
    "attack": flags.DEFINE_string("attack_artifact", None, "Use this AdversarialExamples "
                                  "artifact directory instead of running the attack step."),
    "features": flags.DEFINE_string("features_artifact", None, "Use this Representation "
                                    "artifact directory instead of running the features step."),
}


def run_step(module, params: Mapping[str, Any], inputs: Mapping[str, artifacts.Artifact],
             build: Callable[..., Optional[Mapping[str, Any]]], *,
             resumable: bool = False) -> artifacts.Artifact:
  """Runs (or reuses) a component's artifact under `--output_root` (see `artifacts.run`)."""
  return run_named(module.NAME, module.VERSION, module.OUTPUT_TYPE,
                   dict(params, seed=SEED.value) if "seed" not in params else params,
                   {k: inputs[k] for k in module.INPUTS}, build, resumable=resumable)


def run_named(name: str, version: str, artifact_type: str, params: Mapping[str, Any],
              inputs: Mapping[str, artifacts.Artifact],
              build: Callable[..., Optional[Mapping[str, Any]]], *,
              resumable: bool = False) -> artifacts.Artifact:
  """`artifacts.run` under `--output_root` with `--force` and the resolved flags (components and
  the studies outside the linear pipeline: sweep, toy2d, polynomial)."""
  return artifacts.run(
      component=name, version=version, artifact_type=artifact_type, params=params,
      inputs=inputs, output_root=OUTPUT_ROOT.value, build=build,
      force="all" in FORCE.value or name in FORCE.value, flags=resolved_flags(),
      resumable=resumable)


def provenance(arts: Mapping[str, artifacts.Artifact]) -> list:
  """[{step, type, uri, fingerprint, created}] of the artifacts a report shows."""
  return [{"step": name, "type": a.type, "uri": a.uri, "fingerprint": a.fingerprint,
           "created": a.metadata.get("created")} for name, a in arts.items()]


def page_meta(arts: Mapping[str, artifacts.Artifact]) -> dict:
  """The provenance, resolved flags and versions every report page shows."""
  return {"provenance": provenance(arts), "config": resolved_flags(),
          "versions": artifacts.versions()}


def resolved_flags() -> str:
  """The project's resolved flags in flagfile format (provenance; absl/TF internals left out)."""
  lines = []
  for module, module_flags in sorted(FLAGS.flags_by_module_dict().items()):
    if module.split(".")[0] in ("components", "pipelines", "__main__"):
      lines.extend(f.serialize() for f in module_flags if f.serialize())
  return "\n".join(sorted(set(lines))) + "\n"


def override(name: str, expected_type: str) -> Optional[artifacts.Artifact]:
  """The artifact given by `--<name>_artifact`, loaded and verified, or None."""
  holder = INPUT_DIRS.get(name)
  if holder is None or not holder.value:
    return None
  return artifacts.load(holder.value, expected_type)


def exit_on_user_error(fn: Callable[..., Any]) -> Callable[..., Any]:
  """Wraps a main: a UserError becomes one line on stderr and exit status 2."""
  def wrapped(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except UserError as e:
      print(f"tfhull: error: {e}", file=sys.stderr)
      sys.exit(2)
  return wrapped


def main(step_name: str) -> None:
  """Entry point of `python -m components.<step_name>`: runs the pipeline up to that step."""
  from pipelines import full  # Imported here: it imports every component and defines its flags.
  def run(argv):
    full.run_until(step_name, argv)
  app.run(exit_on_user_error(run))
