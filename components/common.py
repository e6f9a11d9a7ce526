"""What every component shares: run flags, flags -> configs, the entry point.

Each component module `components/NAME.py` defines:
  NAME: its step (also the artifact sub-directory),
  define_flags(): its flags (idempotent; `define_all` calls every component's, so one flagfile
    drives the pipeline and each component alone),
  config(values): its step config (`tfhull.study.config`) from a {flag name: value} mapping.
Flags are read only here, in `main` functions: `study_config(values)` turns them into a
`StudyConfig`, and the study graph (`tfhull.study.graph`) runs the steps. Run alone, a component
computes (or finds in the cache) exactly the artifacts its step needs, unless `--data_artifact`,
`--model_artifact`, `--attack_artifact` or `--features_artifact` points at one.
"""

import importlib
import os
import sys
from typing import Any, Callable, Iterable, Mapping, Optional

from absl import app
from absl import flags

from tfhull.errors import UserError

FLAGS = flags.FLAGS
COMPONENTS = ("data", "train", "attack", "features", "hull", "analyze", "report")

OUTPUT_ROOT = flags.DEFINE_string(
    "output_root", "runs/digits_mlp",
    "Directory (local or gs://) under which every artifact is written as <step>/<fingerprint>/.")
FORCE = flags.DEFINE_list(
    "force", [], "Steps to recompute even when a cached artifact exists ('all' for every step); "
    "replaced artifacts are moved aside, never deleted.")
SEED = flags.DEFINE_integer("seed", 0, "Global seed; the same flags give the same numbers.",
                            lower_bound=0)
STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy for training, attacks and the hull solver's pricing passes.")
DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", True, "TensorFlow op determinism (tf.config.experimental."
    "enable_op_determinism) for every step: the same flags give the same numbers; turn off for "
    "speed on GPUs.")
TPU = flags.DEFINE_string("tpu", "", "TPU address for --strategy=tpu: a name, grpc://host:8470, "
                          "or 'local' on a TPU VM.")

# Artifact-directory overrides: step -> flag.
INPUT_DIRS = {
    "data": flags.DEFINE_string("data_artifact", None, "Use this Dataset artifact directory "
                                "instead of running the data step."),
    "train": flags.DEFINE_string("model_artifact", None, "Use this Model artifact directory "
                                 "instead of running the train step."),
    "attack": flags.DEFINE_string("attack_artifact", None, "Use this AdversarialExamples "
                                  "artifact directory instead of running the attack step."),
    "features": flags.DEFINE_list("features_artifact", [], "Use these Representation artifact "
                                  "directories (one space each) instead of computing them."),
}
_FORCE_STEPS = COMPONENTS + ("all", "sweep", "seeds", "toy2d", "polynomial")


def define_all() -> None:
  """Defines every component's flags (idempotent)."""
  for name in COMPONENTS:
    importlib.import_module(f"components.{name}").define_flags()


def values(defaults: Optional[Mapping[str, Any]] = None) -> dict:
  """{flag name: value} of the parsed flags; `defaults` replace the values of flags the command
  line did not set (a study's own defaults, without changing the global flag defaults)."""
  out = FLAGS.flag_values_dict()
  for name, value in (defaults or {}).items():
    if not FLAGS[name].present:
      out[name] = value
  return out


def run_config(v: Mapping[str, Any]):
  from tfhull.study import config  # pylint: disable=import-outside-toplevel
  unknown = [s for s in v["force"] if s not in _FORCE_STEPS]
  if unknown:
    raise UserError(f"--force={','.join(v['force'])}: unknown step {unknown[0]!r}; use any of "
                    f"{', '.join(_FORCE_STEPS)}")
  overrides = {}
  for step, holder in INPUT_DIRS.items():
    given = v[holder.name]
    if given:
      overrides[step] = tuple(given) if isinstance(given, list) else (given,)
  return config.RunConfig(output_root=v["output_root"], force=tuple(v["force"]),
                          strategy=v["strategy"], tpu=v["tpu"],
                          deterministic=v["deterministic"], overrides=overrides,
                          flags=resolved_flags(v))


def study_config(v: Optional[Mapping[str, Any]] = None):
  """The `StudyConfig` of flag values `v` (default: the parsed flags)."""
  from tfhull.study import config  # pylint: disable=import-outside-toplevel
  define_all()
  v = values() if v is None else v
  mods = {name: importlib.import_module(f"components.{name}") for name in COMPONENTS}
  return config.StudyConfig(**{name: mods[name].config(v) for name in COMPONENTS},
                            run=run_config(v))


def resolved_flags(v: Optional[Mapping[str, Any]] = None) -> str:
  """The project's flags with values `v` (default: as parsed) in flagfile format, for
  provenance (absl and TensorFlow internals left out)."""
  lines = []
  for module, module_flags in sorted(FLAGS.flags_by_module_dict().items()):
    if module.split(".")[0] in ("components", "pipelines", "__main__"):
      for f in module_flags:
        value = f.value if v is None or f.name not in v else v[f.name]
        text = f._serialize(value)  # pylint: disable=protected-access
        if text:
          lines.append(text)
  return "\n".join(sorted(set(lines))) + "\n"


def page_meta(arts: Mapping, flags_string: Optional[str] = None) -> dict:
  """The provenance, resolved flags and versions every report page shows."""
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  from tfhull import environment  # pylint: disable=import-outside-toplevel
  from tfhull.study import steps  # pylint: disable=import-outside-toplevel
  return {"provenance": steps.provenance(arts),
          "config": resolved_flags() if flags_string is None else flags_string,
          "versions": environment.versions(artifacts.versions())}


def run_named(name: str, version: str, artifact_type: str, params: Mapping[str, Any],
              inputs: Mapping, build: Callable[..., Optional[Mapping[str, Any]]], run_cfg):
  """`artifacts.run` for the studies outside the step graph (sweep, toy2d, polynomial)."""
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  return artifacts.run(component=name, version=version, artifact_type=artifact_type,
                       params=params, inputs=inputs, output_root=run_cfg.output_root,
                       build=build, force=run_cfg.forced(name), flags=run_cfg.flags)


def quiet_console() -> None:
  """The quiet console (`tfhull.console`) unless --verbosity was given; imports TensorFlow, so
  call it after the flag checks."""
  from tfhull import console  # pylint: disable=import-outside-toplevel
  console.setup(verbose=FLAGS.is_parsed() and FLAGS["verbosity"].present)


def run_study(cfg, targets: Iterable[str], *, show: bool = True) -> dict:
  """Checks `cfg` for the targets, then runs them and their ancestors; prints the artifacts."""
  from tfhull import study  # pylint: disable=import-outside-toplevel
  g = study.check(cfg, targets)
  quiet_console()
  done = study.run(g, targets, cfg)
  if show:
    print_artifacts(done)
  return done


def print_artifacts(done: Mapping) -> None:
  width = max(len(n) for n in done)
  print("\nArtifacts:")
  for name, art in done.items():
    print(f"  {name:<{width}}  {art.uri}")
    for key, value in art.summary.items():
      if key in art.summary.get("headline", ()):
        print(f"  {'':<{width}}    {key}: {_short(value)}")
  if "report" in done:
    print(f"\nReport: {done['report'].path('report.html')}")


def _short(value):
  if isinstance(value, float):
    return f"{value:.4g}"
  if isinstance(value, dict):
    return ", ".join(f"{k}: {_short(v)}" for k, v in value.items())
  return value


def one_line(message: str, limit: int = 300) -> str:
  """The message on one line of at most `limit` characters (a huge value cut in the middle)."""
  text = " ".join(message.split())
  return text if len(text) <= limit else text[:limit - 40] + " ... " + text[-35:]


def exit_on_user_error(fn: Callable[..., Any]) -> Callable[..., Any]:
  """Wraps a main: a UserError becomes one line on stderr and exit status 2."""
  def wrapped(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except UserError as e:
      print(f"tfhull: error: {one_line(str(e))}", file=sys.stderr)
      sys.exit(2)
  return wrapped


def check_argv(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


# The steps whose flags matter to each component run alone (it runs its ancestors unless their
# artifacts are cached or overridden), in pipeline order.
UPSTREAM = {
    "data": ("data",),
    "train": ("data", "train"),
    "attack": ("data", "train", "attack"),
    "features": ("data", "train", "attack", "features"),
    "hull": ("data", "train", "attack", "features", "hull"),
    "analyze": COMPONENTS[:-1],
    "report": COMPONENTS,
}
_HELP_ARGS = ("-h", "-?", "--help", "-help", "--helpshort", "-helpshort", "--help=true",
              "--helpshort=true")


def _flag_lines(flag, defaults: Mapping[str, Any]) -> list:
  name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
  text = " ".join(flag.help.split())
  syntax = getattr(flag.parser, "syntactic_help", "")
  if syntax and "comma separated" not in syntax and flag.flag_type() not in ("string", "bool"):
    text += f" ({syntax})"
  if flag.name in defaults:
    text += f" (default here: {flag._serialize(defaults[flag.name]).partition('=')[2]!r})"  # pylint: disable=protected-access
  elif flag.default is not None:
    text += f" (default: {flag.default_as_str})"
  return [flags.text_wrap(f"{name}: {text}", length=98, indent="      ",
                          firstline_indent="    ")]


def help_text(doc: str, groups, defaults: Optional[Mapping[str, Any]] = None) -> str:
  """The `--help` page: `doc`, then each (title, flag names) group's flags."""
  lines = [(doc or "").rstrip(), "", "Flags, by step (--helpfull: every flag, absl's too):"]
  for title, names in groups:
    if not names:
      continue
    lines += ["", f"  {title}:"]
    for name in names:
      lines += _flag_lines(FLAGS[name], defaults or {})
  return "\n".join(lines) + "\n"


def step_groups(steps, own: Optional[str] = None) -> list:
  """[(title, flag names)] of the given steps, `own` first, then the run flags."""
  by_module = FLAGS.flags_by_module_dict()

  def names(module):
    return [f.name for f in by_module.get(module, ())]
  ordered = ([own] if own in steps else []) + [s for s in steps if s != own]
  out = []
  for step in ordered:
    title = f"{step} step (components.{step})"
    if step == own:
      title += ", this entry point's own step"
    elif own in COMPONENTS:
      title += ", run first unless cached"
    out.append((title, names(f"components.{step}")))
  out.append(("run (every entry point)", names("components.common")))
  return out


def pipeline_groups(title: str, holders, steps) -> list:
  """[(title, flag names)]: a pipeline's own flags (`holders`), then the given steps' and the run
  flags."""
  return [(title, [h.name for h in holders])] + step_groups(steps)


def _flagfile_names(args) -> list:
  """The file names of --flagfile directives among command-line args or flagfile lines."""
  out, args = [], [a.strip() for a in args]
  for i, arg in enumerate(args):
    for prefix in ("--flagfile=", "-flagfile="):
      if arg.startswith(prefix):
        out.append(arg[len(prefix):])
    if arg in ("--flagfile", "-flagfile") and i + 1 < len(args):
      out.append(args[i + 1])
  return [name for name in out if name]


def check_flagfiles(argv) -> None:
  """A flagfile that includes itself, directly or through others, is an error (absl only warns
  and drops the inner include)."""
  def visit(name, chain):
    real = os.path.realpath(name)
    if real in chain:
      raise UserError(f"--flagfile={name} includes itself ("
                      f"{' -> '.join(os.path.basename(c) for c in chain + [real])}); remove the "
                      "recursive --flagfile line")
    try:
      with open(name, encoding="utf-8") as f:
        lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
      return  # absl reports a missing or unreadable flagfile.
    for sub in _flagfile_names(l for l in lines if not l.lstrip().startswith(("#", "//"))):
      visit(sub, chain + [real])

  for name in _flagfile_names(argv[1:]):
    visit(name, [])


def run_app(main_fn: Callable, groups: Callable[[], list],
            defaults: Optional[Mapping[str, Any]] = None) -> None:
  """`app.run(main_fn)` with UserErrors as one line, and a `--help`/`--helpshort` that lists
  `groups()` (the entry point's own flags, by step) without importing TensorFlow;
  `--helpfull` stays absl's. `defaults`: the entry point's own defaults of shared flags."""
  args = sys.argv[1:]
  if "--" in args:
    args = args[:args.index("--")]
  if any(a in _HELP_ARGS for a in args):
    for title, names in groups():
      for name in names:  # So absl's own short help (--helpxml) lists them too.
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
    sys.stdout.write(help_text(sys.modules["__main__"].__doc__, groups(), defaults))
    sys.exit(0)
  exit_on_user_error(check_flagfiles)(sys.argv)
  app.run(exit_on_user_error(main_fn))


def main(step_name: str) -> None:
  """Entry point of `python -m components.<step_name>`: that step's artifacts and their
  ancestors."""
  define_all()

  def run(argv):
    check_argv(argv)
    run_study(study_config(), [step_name])
  run_app(run, lambda: step_groups(UPSTREAM[step_name], step_name))
