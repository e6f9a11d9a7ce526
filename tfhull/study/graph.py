"""The study as a graph of true dependencies, declared once (components and pipelines use it).

  g = build(cfg)                       # StudyConfig -> Graph
  g.ancestors("hull/pixel/test")       # {"data", "features/pixel"}: pixel needs no model
  done = run(g, ["report"], cfg)       # {node key: Artifact}, computing exactly the ancestors

Nodes (key: inputs):
  data
  train: data
  attack: data, train
  features/<space>: data (+ train for layer:* and logits)
  features/<space>/attack: data, attack (+ train): the attack's adversarial and flip splits
  hull/<space>/<split>[/per_class]: features/<space> (+ features/<space>/attack for attack
    splits; + the hull node of the adversarial split a flip split may alias)
  analyze: data, train, attack, features/layer:features, every hull node
  report: data, train, attack, analyze, every hull node
Each node's artifact lives under `<output_root>/<step>/<fingerprint[:16]>` with the step the first
part of its key, so a node shared by two studies (the pixel test hull of every model in a width
sweep) is one cache entry.
"""

import dataclasses
import functools
from typing import Callable, Iterable, Mapping

from absl import logging

from tfhull import console
from tfhull import versions
from tfhull.errors import UserError
from tfhull.study import steps
from tfhull.study.config import StudyConfig

STEPS = ("data", "train", "attack", "features", "hull", "analyze", "report")

# The step's own code version (its builder in steps.py) and the library parts it calls; the
# cache key combines both (versions.step_version). Bump a step's number when its builder's
# output changes; the parts are checked by tests/test_graph.py.
_VERSIONS = {
    "data": ("2", ("data",)),
    "train": ("2", ("models", "training")),
    "attack": ("2", ("attacks", "models")),
    "features": ("2", ("models", "representations")),
    "hull": ("3", ("hull",)),
    "analyze": ("3", ("analysis",)),
    "report": ("2", ("report",)),
}
_TYPES = {"data": "Dataset", "train": "Model", "attack": "AdversarialExamples",
          "features": "Representation", "hull": "HullDistances", "analyze": "Analysis",
          "report": "Report"}


@dataclasses.dataclass(frozen=True)
class Node:
  """One artifact of the study.

  key: unique name, e.g. "hull/pixel/test"; its first part is the step.
  inputs: input name -> node key (the build reads `inputs[name]`).
  params: what decides the payload besides the inputs (the cache key's params).
  """
  key: str
  inputs: Mapping[str, str]
  params: Mapping
  build: Callable
  resumable: bool = False

  @property
  def step(self) -> str:
    return self.key.split("/")[0]

  @property
  def artifact_type(self) -> str:
    return _TYPES[self.step]

  @property
  def version(self) -> str:
    own, parts = _VERSIONS[self.step]
    return versions.step_version(self.step, own, parts)


@dataclasses.dataclass(frozen=True)
class Graph:
  nodes: Mapping[str, Node]   # In a topological order.

  def keys(self, step: str) -> list:
    """The keys of `step`'s nodes ("hull" -> every hull/... node)."""
    return [k for k in self.nodes if self.nodes[k].step == step]

  def ancestors(self, key: str, stop: Iterable[str] = ()) -> set:
    """Every node `key` depends on (not itself); nodes in `stop` are not expanded."""
    stop, out, todo = set(stop), set(), [key]
    while todo:
      k = todo.pop()
      if k in stop and k != key:
        continue
      for parent in self.nodes[k].inputs.values():
        if parent not in out:
          out.add(parent)
          todo.append(parent)
    return out

  def closure(self, targets: Iterable[str], stop: Iterable[str] = ()) -> list:
    """Targets and their ancestors, in topological order."""
    need = set()
    for t in targets:
      need |= {t} | self.ancestors(t, stop)
    return [k for k in self.nodes if k in need]


def _space_inputs(spec: str) -> dict:
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  needs_model = representations.needs_model([spec])
  return {"data": "data", **({"train": "train"} if needs_model else {})}


def build(cfg: StudyConfig, replicas: int = 1) -> Graph:
  """The graph of `cfg` (`replicas`: of the training strategy, part of the train key)."""
  nodes = {}

  def add(key, inputs, params, fn, resumable=False):
    nodes[key] = Node(key, dict(inputs), params, fn, resumable)

  add("data", {}, cfg.data.key(), steps.data)
  add("train", {"data": "data"}, cfg.train.key(replicas), steps.train, resumable=True)
  specs = cfg.features.specs()
  attack_splits = cfg.attack.query_splits() if cfg.features.adversarial else []
  for spec in specs:  # Before the attack: a bad layer fails right after training.
    add(f"features/{spec}", _space_inputs(spec),
        {"space": spec, "source": "data", "batch_size": cfg.features.batch_size},
        steps.features)
  add("attack", {"data": "data", "train": "train"}, cfg.attack.key(), steps.attack)
  for spec in specs:
    if attack_splits:
      add(f"features/{spec}/attack", {**_space_inputs(spec), "attack": "attack"},
          {"space": spec, "source": "attack", "batch_size": cfg.features.batch_size},
          steps.features)
  h = cfg.hull
  spaces = list(h.spaces) or specs
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  spaces = [representations.parse_representation(s).spec for s in spaces]
  unknown = [s for s in spaces if s not in specs]
  if unknown:
    raise UserError(f"--hull_spaces names {', '.join(unknown)}, which --representations does not "
                    f"compute ({', '.join(specs)}); add it there or drop it")
  solver = h.solver()
  hull_keys = []
  for spec in spaces:
    available = ["test", "train"] + attack_splits
    for split in steps.select_splits(h.query_splits, available, spec):
      base = f"features/{spec}"
      queries = base if split in ("test", "train") else f"{base}/attack"
      inputs = {"points": base, "queries": queries}
      params = {"space": spec, "split": split, "kind": "global", "solver": solver}
      target = "adv_" + split[len("flip_"):] if split.startswith("flip_") else None
      if target and f"hull/{spec}/{target}" in nodes and h.alias_tol > 0:
        inputs["alias"] = f"hull/{spec}/{target}"
        params["alias_tol"] = h.alias_tol
      add(f"hull/{spec}/{split}", inputs, params, steps.hull)
      hull_keys.append(f"hull/{spec}/{split}")
      if h.per_class and split == "test":
        add(f"hull/{spec}/{split}/per_class", {"points": base, "queries": queries},
            {**params, "kind": "per_class"}, steps.hull)
        hull_keys.append(f"hull/{spec}/{split}/per_class")
  study = {"data": "data", "train": "train", "attack": "attack",
           **{k: k for k in hull_keys}}
  if "layer:features" in specs:
    study["features/layer:features"] = "features/layer:features"
  for spec in spaces:  # Train/test features of every hull space: the boundary geometry's.
    study[f"features/{spec}"] = f"features/{spec}"
  add("analyze", study, dataclasses.asdict(cfg.analyze), steps.analyze)
  add("report", {**{k: v for k, v in study.items() if not k.startswith("features/")},
                 "analyze": "analyze"}, dataclasses.asdict(cfg.report), steps.report)
  return Graph(nodes)


def check(cfg: StudyConfig, targets: Iterable[str]) -> Graph:
  """Checks every config the targets need and builds the graph (UserError before any work)."""
  g = build(cfg)
  need = {g.nodes[k].step for k in g.closure(_expand(g, targets), _overridden(g, cfg))}
  cfg.check([s for s in STEPS if s in need])
  return g


def _expand(g: Graph, targets: Iterable[str]) -> list:
  """Step names stand for all their nodes ("hull" -> every hull/... key)."""
  out = []
  for t in targets:
    if t in g.nodes:
      out.append(t)
    elif t in STEPS:
      out += g.keys(t)
    else:
      raise ValueError(f"unknown node or step {t!r}; steps are {', '.join(STEPS)}")
  return out


def _overridden(g: Graph, cfg: StudyConfig) -> dict:
  """Node key -> artifact directory given by --<step>_artifact flags."""
  out = {}
  for step, uris in cfg.run.overrides.items():
    for uri in uris:
      if step == "features":
        from tfhull import artifacts  # pylint: disable=import-outside-toplevel
        art = artifacts.load(uri, "Representation")
        p = art.params
        key = f"features/{p.get('space')}" + ("/attack" if p.get("source") == "attack" else "")
        if key not in g.nodes:
          raise UserError(f"--features_artifact={uri} holds space {p.get('space')} "
                          f"({p.get('source')}), which this study does not use; add it to "
                          "--representations")
        out[key] = uri
      else:
        out[step] = uri
  return out


def run(g: Graph, targets: Iterable[str], cfg: StudyConfig) -> dict:
  """Computes (or finds in the cache) the targets and exactly their ancestors.

  Args:
    g: the graph of `cfg` (`build`); rebuilt here with the strategy's replica count.
    targets: node keys or step names.
    cfg: the study; `cfg.run` says where and how.
  Returns:
    {node key: Artifact} of every node computed or reused, in topological order.
  """
  from tfhull import artifacts  # pylint: disable=import-outside-toplevel
  targets = _expand(g, targets)
  overrides = _overridden(g, cfg)
  order = g.closure(targets, overrides)
  if cfg.run.deterministic:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.experimental.enable_op_determinism()
  if "train" in order and "train" not in overrides:
    g = build(cfg, replicas=steps.replicas(cfg.run))
  elif cfg.run.strategy != "default":
    steps.strategy(cfg.run)  # An unreachable TPU fails before any step runs.
  done = {}
  for key in order:
    node = g.nodes[key]
    if key in overrides:
      done[key] = artifacts.load(overrides[key], node.artifact_type)
      continue
    logging.info("=== %s", key)
    inputs = {name: done[k] for name, k in node.inputs.items()}
    build_fn = functools.partial(node.build, node, cfg, inputs)
    with console.heartbeat(key):  # A line every 15 s of a phase without log lines or bars.
      done[key] = artifacts.run(
          component=node.step, version=node.version, artifact_type=node.artifact_type,
          params=node.params, inputs=inputs, output_root=cfg.run.output_root, build=build_fn,
          force=cfg.run.forced(node.step), flags=cfg.run.flags, resumable=node.resumable)
  return done
