"""tf.distribute strategies from flags (after tensorflow/models `distribute_utils`)."""

from absl import logging
import tensorflow as tf

from tfhull.errors import UserError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


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
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
          tpu="" if tpu == "local" else tpu)
      if tpu not in ("", "local"):
        tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except Exception as e:  # ValueError, RuntimeError, OpError, URLError (metadata server), ...
      raise UserError(f"cannot reach TPU {tpu!r} ({type(e).__name__}: {str(e).splitlines()[0]}); "
                      "check --tpu (a TPU name, grpc://host:8470, or 'local' on a TPU VM)") from e
    return tf.distribute.TPUStrategy(resolver)
  raise UserError(f"unknown --strategy={name!r}; choose one of {', '.join(STRATEGIES)}")


def split_cpu(num: int = 2) -> None:
  """Splits the host CPU into `num` logical devices (call before TensorFlow initialises)."""
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num)])
