"""Who is who in a multi-worker cluster, from TF_CONFIG alone (no TensorFlow import).

  cluster.is_chief()   # True outside a cluster; in one, the chief (or worker 0 without a chief)
"""

import json
import os

from tfhull.errors import UserError


def tf_config() -> dict:
  """The parsed TF_CONFIG environment variable ({} when unset)."""
  try:
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
  except ValueError as e:
    raise UserError(f"TF_CONFIG is not valid JSON ({e}); see docs/cloud.md") from e
  return config if isinstance(config, dict) else {}


def is_multi_worker() -> bool:
  """Whether TF_CONFIG describes a cluster of more than one chief/worker task."""
  cluster = tf_config().get("cluster") or {}
  return sum(len(cluster.get(kind) or ()) for kind in ("chief", "worker")) > 1


def is_chief() -> bool:
  """Whether this process writes shared outputs (artifacts): true outside a multi-worker
  cluster; in one, the `chief` task, or worker 0 when the cluster has no chief (TF's rule)."""
  if not is_multi_worker():
    return True
  config = tf_config()
  task = config.get("task") or {}
  kind, index = task.get("type"), int(task.get("index", 0))
  if kind == "chief":
    return True
  return kind == "worker" and index == 0 and not (config.get("cluster") or {}).get("chief")


def task_name() -> str:
  """'worker:1' style name of this task ('' outside a cluster), for log lines."""
  task = tf_config().get("task") or {}
  return f"{task.get('type')}:{task.get('index', 0)}" if task else ""
