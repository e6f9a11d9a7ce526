"""tf.distribute strategies from flags (after tensorflow/models `distribute_utils`), the chief
check of a multi-worker cluster, and per-example results in input order under any strategy.

  strategy = get_strategy("tpu", "local")            # on a Cloud TPU VM
  out = strategy.run(fn, args=(batch,))
  rows = in_input_order(strategy, out)               # (global batch, ...) numpy, input order
"""

from typing import Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from tfhull.cluster import is_chief  # pylint: disable=unused-import (re-exported)
from tfhull.cluster import is_multi_worker  # pylint: disable=unused-import (re-exported)
from tfhull.errors import UserError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


def tpu_resolver_name(tpu: str) -> str:
  """The `tpu=` argument of TPUClusterResolver for `--tpu`: 'local' (or empty) is the TPU-VM mode
  `tpu="local"`; "" would take TF 2.21's Cloud-name path ("Please provide a TPU Name")."""
  return "local" if tpu in ("", "local") else tpu


def get_strategy(name: str = "default", tpu: str = "") -> tf.distribute.Strategy:
  """Builds a strategy.

  Args:
    name: default (no-op strategy of the current device), one_device, mirrored (all local GPUs,
      or all logical CPUs when there is no GPU), multi_worker_mirrored (TF_CONFIG cluster), tpu.
    tpu: TPU address for `tpu`: a grpc:// address, a TPU name, or 'local' on a TPU VM.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "one_device":
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
  if name == "mirrored":
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    logging.info("MirroredStrategy over %s", devices)
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker_mirrored":
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == "tpu":
    local = tpu_resolver_name(tpu) == "local"
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_resolver_name(tpu))
      if not local:  # A TPU VM runs the TPU in-process: no remote cluster to connect to.
        tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as e:  # ValueError, RuntimeError, OpError, URLError (metadata server), ...
      first = (str(e).strip().splitlines() or [""])[0][:200]
      if local:
        raise UserError(f"no TPU on this machine (--tpu=local needs a Cloud TPU VM with a TPU "
                        f"build of TensorFlow, see docs/cloud.md; {type(e).__name__}: {first}); "
                        "run on the TPU VM, or pass --tpu=NAME or grpc://host:8470") from e
      raise UserError(f"cannot reach TPU {tpu!r} ({type(e).__name__}: {first}); check --tpu (a "
                      "TPU name, grpc://host:8470, or 'local' on a TPU VM)") from e
    return tf.distribute.TPUStrategy(resolver)
  raise UserError(f"unknown --strategy={name!r}; choose one of {', '.join(STRATEGIES)}")


def split_cpu(num: int = 2) -> None:
  """Splits the host CPU into `num` logical devices (call before TensorFlow initialises)."""
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num)])


# ---------------------------------------------------------------------------------------------
# Per-example results in input order.

def order_replica_chunks(chunks: Sequence[np.ndarray], replicas_per_host: int) -> np.ndarray:
  """Concatenates per-replica chunks listed in (host, replica) order into input order.

  A distributed dataset on several hosts hands global batch slice `r * hosts + h` to local
  replica r of host h ((replica, host) order), while `experimental_local_results` (TPU pods) and
  `strategy.gather` (multi-worker) list the replicas host by host. One host: no change.
  """
  chunks = list(chunks)
  if not chunks:
    raise ValueError("no replica results")
  if replicas_per_host < 1 or len(chunks) % replicas_per_host:
    raise ValueError(f"{len(chunks)} replica results do not split into hosts of "
                     f"{replicas_per_host} replicas")
  ordered = []
  for replica in range(replicas_per_host):
    ordered += chunks[replica::replicas_per_host]
  return np.concatenate([np.asarray(c) for c in ordered])


def _multi_worker(strategy) -> bool:
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def _tpu_hosts(strategy) -> int:
  kinds = [k.__name__ for k in type(strategy).__mro__]
  return int(getattr(strategy.extended, "num_hosts", 1)) if any(
      k.startswith("TPUStrategy") for k in kinds) else 1


def in_input_order(strategy, value) -> np.ndarray:
  """The per-example outputs of one `strategy.run` step on a batch of `experimental_distribute_
  dataset`, as one numpy array in the batch's input order, on every worker.

  Single device and one-host mirrored: the local results concatenated. Multi-host TPU: local
  results reordered from (host, replica) to (replica, host). Multi-worker: every worker's results
  gathered (a collective: call it on every worker) and reordered the same way. Replicas must
  return equal-sized chunks (static, padded batches).
  """
  if strategy is not None and _multi_worker(strategy):  # One local replica: a plain tensor.
    gathered = strategy.gather(value, axis=0).numpy()
    chunks = np.split(gathered, strategy.num_replicas_in_sync)
    return order_replica_chunks(chunks, len(strategy.extended.worker_devices))
  if strategy is None or isinstance(value, (tf.Tensor, np.ndarray)):  # One replica.
    return np.asarray(value)
  local = [np.asarray(t) for t in strategy.experimental_local_results(value)]
  hosts = _tpu_hosts(strategy)
  if hosts > 1:
    return order_replica_chunks(local, strategy.extended.num_replicas_per_host)
  return np.concatenate(local)


def distribute_for_order(dataset):
  """`dataset` with element-level (DATA) auto-sharding, the layout `in_input_order` undoes
  (from_tensor_slices data would fall back to it anyway, with a warning)."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  return dataset.with_options(options)
