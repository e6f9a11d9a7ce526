"""Typed, frozen configs of the study's steps and of the whole study (configs as code).

  cfg = StudyConfig(data=DataConfig(dataset="digits"), train=TrainStepConfig(model="mlp"))
  cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, model="mlp:width=8"))

The components translate their absl flags into these (`components/common.py`); library and step
code take them and never read flags. `key()` of a step config is what decides its artifact's
payload (its part of the cache key); settings that change how, not what, is computed (download,
strategy, provenance) stay out of it.
"""

import dataclasses
from typing import Mapping, Optional, Tuple

from tfhull.attacks import AttackConfig
from tfhull.errors import UserError
from tfhull.training import TrainConfig


def _asdict(cfg) -> dict:
  return json_ready(dataclasses.asdict(cfg))


def json_ready(obj):
  """Tuples to lists, recursively (configs are compared and hashed as canonical JSON)."""
  if isinstance(obj, dict):
    return {k: json_ready(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [json_ready(v) for v in obj]
  return obj


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The data step: source, subsampling, label noise and corruption (tfhull.data.prepare)."""
  dataset: str = "digits"
  data_dir: Optional[str] = None
  download: bool = False            # How, not what: not in the key.
  train_size: int = 0
  test_size: int = 0
  classes: Tuple[str, ...] = ()
  label_noise: float = 0.0
  corruption: str = "none"
  seed: int = 0

  def key(self) -> dict:
    d = _asdict(self)
    del d["download"]
    return d

  def check(self) -> None:
    import tfhull.data  # pylint: disable=import-outside-toplevel
    if self.data_dir and not self.dataset.startswith("tfds:"):
      raise UserError(f"--data_dir applies to tfds: sources only, not --dataset={self.dataset}; "
                      "drop --data_dir")
    tfhull.data.check_options(self.dataset, train_size=self.train_size,
                              test_size=self.test_size, classes=list(self.classes),
                              label_noise=self.label_noise, corruption=self.corruption,
                              seed=self.seed)


@dataclasses.dataclass(frozen=True)
class TrainStepConfig:
  """The train step: a model spec and its training regime (`tfhull.training.TrainConfig`)."""
  model: str = "mlp:width=256,depth=2"
  training: TrainConfig = TrainConfig(until_interpolation=True)
  steps_per_execution: int = 1  # Keras compile; not in the key (it does not change the weights).

  def key(self, replicas: int = 1) -> dict:
    """The cache key: the spec, the regime, and the global batch (per-replica batch x replicas)
    with the replica count, since both change the optimisation."""
    from tfhull.models import registry  # pylint: disable=import-outside-toplevel
    path = registry.file_path(self.model)
    if path is not None:  # keras:/savedmodel:PATH is not trained: its content is the whole key.
      return {"model": self.model, "model_sha256": registry.spec_sha256(self.model)}
    t = _asdict(self.training)
    return {"model": self.model, **t, "replicas": int(replicas),
            "global_batch": int(t["batch_size"]) * int(replicas)}

  def check(self) -> None:
    from tfhull import models  # pylint: disable=import-outside-toplevel
    self.training.check()
    models.parse_spec(self.model)
    path = models.file_path(self.model)
    if models.file_kind(self.model) == "savedmodel":
      from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
      savedmodel.signature(self.model, path)  # Exists, has the signature, returns logits.
    elif path is not None and "://" not in path:
      import os  # pylint: disable=import-outside-toplevel
      if not os.path.isfile(path):
        raise UserError(f"--model={self.model}: no such file {path}")


@dataclasses.dataclass(frozen=True)
class AttackStepConfig:
  """The attack step: `size` seeded test samples (0 = all) under a `tfhull.attacks.AttackConfig`."""
  size: int = 0
  attack: AttackConfig = AttackConfig(attacks=("fgm", "pgd", "cw_l2"), norms=("inf", "2"))

  def key(self) -> dict:
    return {"size": self.size, **_asdict(self.attack)}

  def check(self) -> None:
    if self.size < 0:
      raise UserError(f"--attack_size={self.size} is negative; pass 0 (all) or a count")
    self.attack.check()  # The L2 bound needs the input dimension: `StudyConfig.check`.

  def query_splits(self) -> list:
    """Names of the query splits the attack step produces (adv_/flip_<attack>_<norm>)."""
    a = self.attack
    out = []
    if "cw_l2" in a.attacks and "2" in a.norms:
      out.append(("cw_l2", "2"))
    if a.minimal and not a.targeted:
      out += [("min_pgd", n) for n in a.norms]
    names = []
    for attack, norm in sorted(out):
      names.append(f"adv_{attack}_{norm}")
      if a.flip_points:
        names.append(f"flip_{attack}_{norm}")
    return names


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
  """The spaces hull distances are measured in, and whether the attack's points join them."""
  representations: Tuple[str, ...] = ("pixel", "haar:1:top32", "layer:features")
  batch_size: int = 512
  adversarial: bool = True

  def check(self) -> None:
    from tfhull import representations  # pylint: disable=import-outside-toplevel
    if not self.representations:
      raise UserError("--representations is empty; list at least one space "
                      "(e.g. pixel,layer:features)")
    specs = [representations.parse_representation(s).spec for s in self.representations]
    if len(set(specs)) != len(specs):
      raise UserError(f"--representations={','.join(self.representations)} names a space "
                      "twice; list each once")
    if self.batch_size < 1:
      raise UserError(f"--features_batch_size={self.batch_size} must be >= 1")

  def specs(self) -> list:
    from tfhull import representations  # pylint: disable=import-outside-toplevel
    return [representations.parse_representation(s).spec for s in self.representations]


@dataclasses.dataclass(frozen=True)
class HullConfig:
  """Which (space, query split) pairs are measured and the solver's settings."""
  spaces: Tuple[str, ...] = ()      # () = every space of the features step.
  query_splits: Tuple[str, ...] = ("test", "adv_min_pgd_*", "flip_min_pgd_*")
  per_class: bool = True
  rel_tol: float = 1e-4
  abs_tol: Optional[float] = None
  max_passes: int = 40
  batch_size: int = 256
  working_set_size: int = 0         # 0: the solver's automatic policy (by training-set size).
  max_inner_steps: int = 4096
  dtype: str = "float32"
  alias_tol: float = 0.05           # A flip split within this fraction of its adv split: aliased.
  method: str = "column_generation"  # Or projected_gradient, auto (docs/solver-methods.md).

  def solver(self) -> dict:
    """Keyword arguments of `tfhull.hull.project_onto_hull`. The method is listed only when it
    is not the default, so existing hull artifacts keep their fingerprints."""
    out = dict(rel_tol=self.rel_tol, abs_tol=self.abs_tol, max_passes=self.max_passes,
               batch_size=self.batch_size, working_set_size=self.working_set_size,
               max_inner_steps=self.max_inner_steps, dtype=self.dtype)
    if self.method != "column_generation":
      out["method"] = self.method
    return out

  def check(self) -> None:
    import math  # pylint: disable=import-outside-toplevel
    from tfhull import representations  # pylint: disable=import-outside-toplevel
    for s in self.spaces:
      representations.parse_representation(s)
    for name, v in (("hull_rel_tol", self.rel_tol), ("hull_abs_tol", self.abs_tol),
                    ("hull_alias_tol", self.alias_tol)):
      if v is not None and not math.isfinite(v):
        raise UserError(f"--{name}={v} is not a finite number")
    if not self.query_splits:
      raise UserError("--hull_query_splits is empty; list test or an adv_/flip_ split")
    methods = ("column_generation", "projected_gradient", "auto")
    if self.method not in methods:
      raise UserError(f"--hull_method={self.method} is not one of {', '.join(methods)}")
    if not 0 <= self.alias_tol < 1:
      raise UserError(f"--hull_alias_tol={self.alias_tol} must be in [0, 1) (0: never alias)")


@dataclasses.dataclass(frozen=True)
class AnalyzeConfig:
  """Ray scans from each test sample's pixel-space hull projection through the sample."""
  ray_t_min: float = -1.0
  ray_t_max: float = 3.0
  ray_points: int = 81
  ray_samples: int = 0
  # Shifted inputs (tfhull.analysis.shift): corruptions of the test set, and the held-out classes
  # when --classes keeps a subset; up to shift_samples inputs per set.
  shift_corruptions: Tuple[str, ...] = ("shuffled_pixels",)
  shift_samples: int = 200
  geometry_samples: int = 100   # Boundary geometry (docs/geometry.md): closest-flip samples,
  morph_pairs: int = 4          # segments per morph kind (0: none),
  ambiguity_rel: float = 0.05   # ambiguity delta / median test top-two logit gap.

  def geometry(self):
    """The `tfhull.analysis.boundary_study.GeometryConfig` of these settings."""
    from tfhull.analysis.boundary_study import GeometryConfig  # pylint: disable=import-outside-toplevel
    return GeometryConfig(flip_samples=self.geometry_samples, morph_pairs=self.morph_pairs,
                          ambiguity_rel=self.ambiguity_rel)

  def check(self) -> None:
    import math  # pylint: disable=import-outside-toplevel
    from tfhull.data import CORRUPTIONS  # pylint: disable=import-outside-toplevel
    bad = [c for c in self.shift_corruptions if c not in CORRUPTIONS]
    if bad:
      raise UserError(f"--shift_corruptions names {bad[0]!r}; use any of "
                      f"{', '.join(c for c in CORRUPTIONS if c != 'none')} (or leave it empty)")
    if self.shift_samples < 1:
      raise UserError(f"--shift_samples={self.shift_samples} must be >= 1")
    for name, v in (("ray_t_min", self.ray_t_min), ("ray_t_max", self.ray_t_max)):
      if not math.isfinite(v):
        raise UserError(f"--{name}={v} is not a finite number")
    if not self.ray_t_min <= 0 < 1 <= self.ray_t_max:
      raise UserError(f"--ray_t_min={self.ray_t_min} must be <= 0 and --ray_t_max="
                      f"{self.ray_t_max} >= 1 (the ray runs from the projection through the "
                      "sample)")
    if self.ray_points < 3 or self.ray_samples < 0:
      raise UserError(f"--ray_points={self.ray_points} must be >= 3 and --ray_samples="
                      f"{self.ray_samples} >= 0")
    if self.geometry_samples < 0 or self.morph_pairs < 0:
      raise UserError(f"--geometry_samples={self.geometry_samples} and --morph_pairs="
                      f"{self.morph_pairs} must be >= 0")
    if not (math.isfinite(self.ambiguity_rel) and self.ambiguity_rel > 0):
      raise UserError(f"--ambiguity_rel={self.ambiguity_rel} must be a positive number")


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  image_rows: int = 6
  title: str = ""

  def check(self) -> None:
    if self.image_rows < 0:
      raise UserError(f"--report_image_rows={self.image_rows} must be >= 0")


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """How a study runs (not in any cache key): where, with what strategy, what to recompute.

  overrides: step name ("data", "train", "attack", "features") -> artifact directories used
    instead of running that step (`--data_artifact`, ...; features may list several).
  flags: the resolved flags in flagfile format, recorded for provenance.
  """
  output_root: str = "runs/digits_mlp"
  force: Tuple[str, ...] = ()
  strategy: str = "default"
  tpu: str = ""
  deterministic: bool = True
  overrides: Mapping[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)
  flags: str = ""

  def forced(self, step: str) -> bool:
    return "all" in self.force or step in self.force

  def check(self) -> None:
    """Output root and artifact overrides use a scheme the artifact store supports (UserError)."""
    check_uri(self.output_root, "--output_root")
    flags = {"data": "--data_artifact", "train": "--model_artifact",
             "attack": "--attack_artifact", "features": "--features_artifact"}
    for step, uris in self.overrides.items():
      for uri in uris:
        check_uri(uri, flags.get(step, f"--{step}_artifact"))


# URI schemes artifacts may live under: local paths (also file://) and Google Cloud Storage, the
# filesystems of tf.io.gfile that outlive the process (ram:// is in-memory: gone at exit).
SCHEMES = ("file", "gs")


def check_uri(uri: str, flag: str) -> None:
  """UserError unless `uri` is a local path, file:// or gs:// URI."""
  scheme, sep, rest = str(uri).partition("://")
  if not sep:
    return
  if scheme not in SCHEMES or not rest.strip("/"):
    raise UserError(f"{flag}={uri}: unsupported location; use a local path, file:///path or "
                    "gs://bucket/path (the artifact store supports "
                    f"{', '.join(s + '://' for s in SCHEMES)} and local paths)")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """The whole study: one config per step and how to run it."""
  data: DataConfig = DataConfig()
  train: TrainStepConfig = TrainStepConfig()
  attack: AttackStepConfig = AttackStepConfig()
  features: FeaturesConfig = FeaturesConfig()
  hull: HullConfig = HullConfig()
  analyze: AnalyzeConfig = AnalyzeConfig()
  report: ReportConfig = ReportConfig()
  run: RunConfig = RunConfig()

  def check(self, steps=("data", "train", "attack", "features", "hull")) -> None:
    """Cheap checks of the named steps' configs (UserError), before anything runs; where the
    input shape is known without reading the data (digits, toy2d, npz), also what depends on it:
    image-only models, the L2 eps bound, Haar levels and top-k sizes."""
    self.run.check()
    for step in steps:
      getattr(self, step).check()
    batch = self.train.training.batch_size
    from tfhull.models import registry  # pylint: disable=import-outside-toplevel
    trains = registry.file_path(self.train.model) is None  # keras:PATH is not trained.
    if "train" in steps and trains and self.data.train_size and batch > self.data.train_size:
      raise UserError(f"--batch_size={batch} exceeds --train_size={self.data.train_size}: no "
                      "full batch to train on; lower --batch_size")
    import tfhull.data  # pylint: disable=import-outside-toplevel
    shape = tfhull.data.input_shape(self.data.dataset)
    if "features" in steps and not {"train", "features"} & set(self.run.overrides):
      check_layers(self, shape)
    if shape is not None:
      check_shape(self, shape, steps)


def check_layers(cfg: "StudyConfig", shape: Optional[Tuple[int, ...]]) -> None:
  """Each `layer:NAME` space names a layer the configured model will have (UserError), checked
  against the builder's layer names without building the model. A numbered Keras name of a kind
  the model has (`dense_3`) passes: numbering depends on what the process built before, so the
  features step checks it against the trained model."""
  import re  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  names = None
  for spec in cfg.features.representations:
    rep = representations.parse_representation(spec)
    if rep.kind != "layer":
      continue
    names = names or registry.layer_names(cfg.train.model, shape)
    if names is None:  # A model file whose layers cannot be read here: checked on load.
      return
    if rep.layer in names or re.sub(r"_\d+$", "", rep.layer) in names:
      continue
    shown = names if len(names) <= 12 else names[:8] + ["..."] + names[-2:]
    raise UserError(f"representation {spec}: --model={cfg.train.model} has no layer "
                    f"{rep.layer!r}; its layers are {', '.join(shown)} (features is the "
                    "penultimate one)")


def check_shape(cfg: "StudyConfig", shape: Tuple[int, ...], steps) -> None:
  """The checks of `cfg` that need the per-example input shape (UserError)."""
  import math  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  dim = math.prod(shape)
  if not dim:
    raise UserError(f"--dataset={cfg.data.dataset} has inputs of shape {shape}: examples with no "
                    "features; check the file")
  if "train" in steps:
    name, _ = registry.parse_spec(cfg.train.model)
    if name in registry.REGISTRY and registry.REGISTRY[name].image_only and len(shape) != 3:
      raise UserError(f"--model={cfg.train.model} needs images (H, W, C), but --dataset="
                      f"{cfg.data.dataset} has inputs of shape {shape}; use mlp or linear")
    if name == "savedmodel":  # Its input shape, before any work.
      from tfhull.models import savedmodel  # pylint: disable=import-outside-toplevel
      savedmodel.check(cfg.train.model, registry.file_path(cfg.train.model), shape)
  if "attack" in steps:
    cfg.attack.attack.check(dim)
  if "features" in steps:
    for spec in cfg.features.specs():
      rep = representations.parse_representation(spec)
      if rep.kind != "haar":
        continue
      if len(shape) != 3:
        raise UserError(f"representation {spec} needs images, but --dataset="
                        f"{cfg.data.dataset} has inputs of shape {shape}; use pixel")
      side = max(shape[0], shape[1])
      if 2 ** rep.level > side:
        raise UserError(f"representation {spec}: {rep.level} Haar levels need images of at least "
                        f"{2 ** rep.level} pixels, these are {shape[0]}x{shape[1]}; use a level "
                        f"<= {int(math.log2(side))}")
      m = 2 ** rep.level
      coeffs = (-(-shape[0] // m) * m) * (-(-shape[1] // m) * m) * shape[2]
      if rep.top_k is not None and rep.top_k > coeffs:
        raise UserError(f"representation {spec} keeps {rep.top_k} coefficients, but "
                        f"{shape[0]}x{shape[1]}x{shape[2]} images have {coeffs}; use top{coeffs} "
                        "or fewer")
  check_memory(cfg, shape, steps)


# Split sizes of the sources whose sizes are known without reading them (before subsampling).
_KNOWN_SIZES = {"digits": (1347, 450), "toy2d": (750, 250)}


def machine_memory() -> int:
  """Physical memory of this machine in bytes (0 if unknown)."""
  import os  # pylint: disable=import-outside-toplevel
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return 0


def model_parameters(spec: str, shape: Tuple[int, ...], num_classes: int = 10) -> Optional[int]:
  """An estimate of the parameter count of model `spec` on inputs of `shape` (within a few
  percent: biases and batch-norm terms are counted roughly), without building it."""
  import math  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  name, kw = registry.parse_spec(spec)
  dim, channels = math.prod(shape), shape[-1]
  if name == "linear":
    return (dim + 1) * num_classes
  if name == "mlp":
    w, d = kw["width"], kw["depth"]
    return dim * w + (d - 1) * w * w + d * w + (w + 1) * num_classes
  if name == "cnn":
    w, d = kw["width"], kw["depth"]
    return 9 * channels * w + (d - 1) * 9 * w * w + d * w + (w + 1) * num_classes
  if name == "wide_resnet":
    k, n = kw["widen"], (kw["depth"] - 4) // 6
    total, prev = 9 * channels * 16, 16
    for filters in (16 * k, 32 * k, 64 * k):
      total += 9 * prev * filters + prev * filters + (2 * n - 1) * 9 * filters * filters
      prev = filters
    return total + (prev + 1) * num_classes
  if name == "resnet":
    return 272474 * max(1, kw["depth"] // 20)
  return None


def _space_dim(cfg: "StudyConfig", spec: str, shape: Tuple[int, ...]) -> Optional[int]:
  import math  # pylint: disable=import-outside-toplevel
  from tfhull import representations  # pylint: disable=import-outside-toplevel
  from tfhull.models import registry  # pylint: disable=import-outside-toplevel
  rep = representations.parse_representation(spec)
  if rep.kind == "pixel":
    return math.prod(shape)
  if rep.kind == "haar":
    m = 2 ** rep.level
    padded = (-(-shape[0] // m) * m) * (-(-shape[1] // m) * m) * shape[2]
    return rep.top_k or padded
  if rep.kind == "logits":
    return 10
  name, kw = registry.parse_spec(cfg.train.model)
  if rep.layer == "features":
    return {"linear": math.prod(shape), "mlp": kw.get("width"), "cnn": kw.get("width"),
            "resnet": 64, "wide_resnet": 64 * kw.get("widen", 1)}.get(name)
  return None


def check_memory(cfg: "StudyConfig", shape: Tuple[int, ...], steps,
                 memory: Optional[int] = None) -> None:
  """Refuses settings whose dominant array alone exceeds the machine's memory (UserError with
  the estimate), before any step runs: the model with its optimizer state, one space's
  coordinates of both splits, one hull batch's working set."""
  memory = machine_memory() if memory is None else memory
  if not memory:
    return
  kind = cfg.data.dataset.split(":")[0]
  known = _KNOWN_SIZES.get(kind)
  n_train = cfg.data.train_size or (known[0] if known else None)
  n_test = cfg.data.test_size or (known[1] if known else None)
  needs = []
  if "train" in steps:
    params = model_parameters(cfg.train.model, shape)
    if params:  # Weights, gradients and two Adam moments, float32.
      needs.append((f"--model={cfg.train.model} (~{params:,} parameters; weights, gradients and "
                    "optimizer state)", 16 * params, "a smaller model"))
  if "features" in steps or "hull" in steps:
    for spec in cfg.features.specs():
      d = _space_dim(cfg, spec, shape)
      if d is None:
        continue
      if n_train is not None:
        needs.append((f"representation {spec} ({n_train + (n_test or 0):,} examples x {d:,} "
                      "float32 coordinates)", 4 * (n_train + (n_test or 0)) * d,
                      "fewer dimensions (e.g. haar:L:topK) or --train_size"))
      if "hull" in steps and n_train is not None:
        # The solver's centred float64 copies of the training matrix, and per batch of queries a
        # Gram matrix over the working set (its slots capped at the training size).
        batch = min(cfg.hull.batch_size, n_test) if n_test else cfg.hull.batch_size
        k = min(cfg.hull.working_set_size or 256, 2 * n_train)
        width = 8 if cfg.hull.dtype == "float64" else 4
        needs.append((f"the hull solve in {spec} ({n_train:,} x {d:,} training matrix in "
                      f"float64, {batch:,} queries x {k:,}^2 working-set Gram)",
                      16 * n_train * d + width * batch * k * k,
                      "fewer dimensions, --train_size, or a smaller --hull_batch_size"))
  for what, size, fix in needs:
    if size > memory:
      raise UserError(f"{what} needs {size / 2**30:,.1f} GiB ({size:,} bytes), more than this "
                      f"machine's {memory / 2**30:,.1f} GiB of memory; use {fix}")
