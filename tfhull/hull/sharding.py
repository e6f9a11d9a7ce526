"""The hull solver across the workers of a multi-worker cluster: queries sharded, points whole.

Every worker holds (or streams) all n points and solves whole batches of queries, batch i on
worker i % workers, pricing each query against every point with its own local replicas. So each
certificate is the one-process certificate (no candidate list ever has to cross workers), and a
query's batch, and therefore its result and its pass count, is the one a single process computes.
The per-batch results are then gathered in batch order on every worker (one all-gather, a
collective: every worker calls it once per solve, whatever its share).

  workers, index, local = layout(strategy)  # (1, 0, strategy) outside a multi-worker cluster
  mine = [i for i in range(n_batches) if i % workers == index]
  table = gather_rows(strategy, block)      # (workers, rows, width) float64, worker order

TensorFlow is imported only when a strategy is given (the solver also runs under JAX).
"""

import functools
from typing import Any, Sequence

import numpy as np


def _is_multi_worker(strategy) -> bool:
  if strategy is None:
    return False
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
          and strategy.extended._in_multi_worker_mode())  # pylint: disable=protected-access


def layout(strategy) -> tuple[int, int, Any]:
  """(workers, this worker's index in replica order, the strategy its pricer uses: its local
  replicas, None for one). Outside a multi-worker cluster: (1, 0, strategy)."""
  if not _is_multi_worker(strategy):
    return 1, 0, strategy
  return _layout(strategy)


@functools.lru_cache(maxsize=8)
def _layout(strategy) -> tuple[int, int, Any]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  devices = tuple(strategy.extended.worker_devices)
  per_worker = len(devices)
  # This worker's first global replica id, from the public replica context (no collective).
  ids = strategy.experimental_distribute_values_from_function(
      lambda ctx: tf.constant(ctx.replica_id_in_sync_group))
  first = min(int(t) for t in strategy.experimental_local_results(ids))
  local = tf.distribute.MirroredStrategy(list(devices)) if per_worker > 1 else None
  return strategy.num_replicas_in_sync // per_worker, first // per_worker, local


def my_batches(n_batches: int, workers: int, index: int) -> list[int]:
  """The batches worker `index` solves: i % workers == index (balanced within one batch)."""
  return list(range(index, n_batches, workers))


def gather_rows(strategy, block: np.ndarray) -> np.ndarray:
  """Every worker's (rows, width) float64 `block`, as (workers, rows, width) in worker order
  (an all-gather across the cluster; every worker must call it with the same shape)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  per_worker = len(strategy.extended.worker_devices)
  mine = tf.constant(block, tf.float64)
  empty = tf.zeros_like(mine)
  value = strategy.experimental_distribute_values_from_function(
      lambda ctx: mine if ctx.replica_id_in_sync_group % per_worker == 0 else empty)
  rows, width = block.shape
  out = strategy.gather(value, axis=0).numpy()  # Global replica order: worker by worker.
  return out.reshape(-1, per_worker, rows, width)[:, 0]


def pack(parts: Sequence[dict], rows: int) -> tuple[np.ndarray, list]:
  """Per-batch result dicts (each value (b_i, ...)) as one (rows, width) float64 table, zero
  padded, and the column layout for `unpack`. Integers must be below 2^53 (exact)."""
  keys = sorted(parts[0]) if parts else []
  spec, cols = [], []
  for key in keys:
    vals = np.concatenate([np.asarray(p[key]) for p in parts])
    spec.append((key, vals.shape[1:], vals.dtype))
    cols.append(vals.reshape(len(vals), -1).astype(np.float64))
  table = np.concatenate(cols, axis=1) if cols else np.zeros((0, 0))
  out = np.zeros((rows, table.shape[1]))
  out[:len(table)] = table
  return out, spec


def unpack(table: np.ndarray, spec: list, sizes: Sequence[int]) -> list[dict]:
  """The inverse of `pack`: one dict per batch of `sizes` rows, read from the top of `table`."""
  parts, start = [], 0
  for size in sizes:
    part, col = {}, 0
    for key, shape, dtype in spec:
      width = int(np.prod(shape, dtype=np.int64))
      part[key] = table[start:start + size, col:col + width].reshape(
          (size,) + tuple(shape)).astype(dtype)
      col += width
    parts.append(part)
    start += size
  return parts


def share(parts: dict, sizes: Sequence[int], strategy, workers: int, index: int) -> list[dict]:
  """Every batch's result dict in batch order, on every worker: this worker's `parts`
  ({batch: dict}, its `my_batches`) gathered with the others'. `sizes`: every batch's real row
  count. Every worker must hold at least one batch (the column layout comes from its own)."""
  if workers == 1:
    return [parts[i] for i in range(len(sizes))]
  rows = max(sum(sizes[i] for i in my_batches(len(sizes), workers, w)) for w in range(workers))
  table, spec = pack([parts[i] for i in my_batches(len(sizes), workers, index)], rows)
  tables = gather_rows(strategy, table)
  out = [None] * len(sizes)
  for w in range(workers):
    batches = my_batches(len(sizes), workers, w)
    for i, part in zip(batches, unpack(tables[w], spec, [sizes[i] for i in batches])):
      out[i] = part
  return out
