"""Pricing passes: the top-m scores of every query over all points (or its class's points).

`Pricer` holds the centred points in chunks on the device(s) (sharded over one host's replicas
under a `tf.distribute` strategy); `ClassPricer` prices each row against its own class's points
in one batched GEMM (per-class hulls). One call = one full pass over the points.
"""

import functools
from typing import Optional

import numpy as np

from tfhull.hull import backend
from tfhull.hull import certificate
from tfhull.hull import kernels

MIN_ROWS = 16  # Smallest row count a call is padded to (and the solver's smallest compacted batch).


def pow2(n: int) -> int:
  return 1 << max(0, int(n) - 1).bit_length()


def chunking(n: int, chunk_size: int, min_rows: int = 1) -> tuple[int, int]:
  """(rows per chunk, chunks) for n rows: equal chunks of at most chunk_size rows, rounded up to a
  multiple of 128 (so nearby n share traces) and to at least min_rows: the padding is under 128
  rows per chunk, not up to the next power of two."""
  n_chunks = -(-n // chunk_size)
  grain = 128 if chunk_size >= 128 else 8
  chunk = max(-(-(-(-n // n_chunks)) // grain) * grain, min_rows)
  return chunk, -(-n // chunk)


class Pricer:
  """Holds the centred points, chunked on device(s); one call = one full pass over A."""

  def __init__(self, a_c: np.ndarray, cfg, m: int, strategy,
               batch: Optional[int] = None):
    n, d = a_c.shape
    self.m = m
    self.batch = batch  # Full batch rows: calls with fewer (the live queries) pad to a power of
                        # two below it (few shapes to compile), else to the full batch.
    self.dtype = cfg.dtype
    chunk, n_chunks = chunking(n, cfg.chunk_size, m)
    self.strategy = strategy
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    n_chunks = -(-n_chunks // replicas) * replicas
    self.chunks = []
    for c in range(n_chunks):
      rows = a_c[c * chunk:(c + 1) * chunk]
      block = np.zeros((chunk, d), dtype=cfg.dtype)
      block[:len(rows)] = rows
      valid = np.zeros((chunk,), bool)
      valid[:len(rows)] = True
      self.chunks.append((block, (block.astype(np.float64) ** 2).sum(1).astype(cfg.dtype), valid,
                          np.int32(c * chunk)))
    self._fns = {nearest: backend.compile_fn(kernels.price_chunk, nearest=nearest)
                 for nearest in (True, False)}
    self.stream = n_chunks * chunk * d * np.dtype(cfg.dtype).itemsize > cfg.device_bytes
    if strategy is not None:
      self._init_distributed(replicas)
    elif not self.stream:
      self.device_chunks = [tuple(backend.to_device(a) for a in ch) for ch in self.chunks]

  def _init_distributed(self, replicas: int):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    strategy = self.strategy
    groups = [self.chunks[i:i + replicas] for i in range(0, len(self.chunks), replicas)]
    self.groups = []
    for group in groups:
      def value_fn(ctx, group=group):
        return tuple(tf.constant(a) for a in group[ctx.replica_id_in_sync_group])
      self.groups.append(strategy.experimental_distribute_values_from_function(value_fn))
    self._group_fn = {nearest: group_fn(strategy, nearest) for nearest in (True, False)}

  def __call__(self, w: np.ndarray, nearest: bool, groups: Optional[np.ndarray] = None):
    """Top-m scores and global indices over all n points, (B, m) each, as numpy (`groups`:
    unused, one hull)."""
    del groups
    rows = w.shape[0]
    b = max(MIN_ROWS, pow2(rows))
    if self.batch is not None and b >= self.batch:
      b = max(self.batch, rows)
    if b > rows:  # Padding rows (zero vectors) are priced and dropped.
      w = np.concatenate([w, np.zeros((b - rows, w.shape[1]), w.dtype)])
    vals = backend.to_device(np.full((b, self.m), kernels.NEG, dtype=self.dtype))
    idx = backend.to_device(np.full((b, self.m), -1, dtype=np.int32))
    w = backend.to_device(w.astype(self.dtype))
    if self.strategy is None:
      fn = self._fns[nearest]
      # Device-resident chunks, or (points larger than device_bytes) streamed from the host.
      for chunk in (self.chunks if self.stream else self.device_chunks):
        vals, idx = fn(w, *chunk, vals, idx)
    else:
      empty_vals, empty_idx = vals, idx
      for group in self.groups:
        vals, idx = self._group_fn[nearest](w, group, vals, idx, empty_vals, empty_idx)
    return (backend.to_numpy(vals)[:rows].astype(np.float64),
            backend.to_numpy(idx)[:rows].astype(np.int64))

  def exact_max(self, a, w: np.ndarray, groups: Optional[np.ndarray] = None) -> np.ndarray:
    """max_i <w, a_i> (B,) over all points (`a`: the normalised view), float64 on the host."""
    del groups
    return certificate.exact_max(a, 0.0, w)


class ClassPricer:
  """Prices each query row against the points of its own class only (per-class hulls, `groups`
  (B,) the rows' classes): one batched GEMM over all classes per chunk (`kernels.price_classes`),
  so c hulls cost one pass's FLOPs and one call per pass, not c of each. One device (no strategy).
  """

  def __init__(self, a_c: np.ndarray, labels: np.ndarray, num_classes: int, cfg,
               m: int):
    d = a_c.shape[1]
    self.m, self.dtype, self.c = m, cfg.dtype, num_classes
    self.members = [np.nonzero(labels == k)[0] for k in range(num_classes)]
    longest = max(len(rows) for rows in self.members)
    # Equal chunks of each class's rows, padded to the longest class.
    chunk, n_chunks = chunking(longest, cfg.chunk_size)
    self.chunks = []
    for s in range(n_chunks):
      block = np.zeros((num_classes, chunk, d), cfg.dtype)
      index = np.full((num_classes, chunk), -1, np.int32)
      for k, rows in enumerate(self.members):
        part = rows[s * chunk:(s + 1) * chunk]
        block[k, :len(part)] = a_c[part]
        index[k, :len(part)] = part
      sqnorm = (block.astype(np.float64) ** 2).sum(2).astype(cfg.dtype)
      self.chunks.append((block, sqnorm, index))
    self._fns = {nearest: backend.compile_fn(kernels.price_classes, nearest=nearest)
                 for nearest in (True, False)}
    self.stream = n_chunks * num_classes * chunk * d * np.dtype(cfg.dtype).itemsize \
        > cfg.device_bytes
    if not self.stream:
      self.device_chunks = [tuple(backend.to_device(v) for v in ch) for ch in self.chunks]

  def __call__(self, w: np.ndarray, nearest: bool, groups: Optional[np.ndarray] = None):
    """Top-m scores and global indices (B, m) of each row's own class's points; a class with
    fewer than m points pads its list with index -1 (the list then holds every point)."""
    groups = np.asarray(groups, np.int64)
    counts = np.bincount(groups, minlength=self.c)
    order = np.argsort(groups, kind="stable")
    pos = np.empty(len(groups), np.int64)
    pos[order] = np.arange(len(groups)) - np.repeat(np.cumsum(counts) - counts, counts)
    b = max(8, pow2(int(counts.max())))  # Rows per class: few distinct shapes (traces).
    w3 = np.zeros((self.c, b, w.shape[1]), self.dtype)
    w3[groups, pos] = w
    vals = backend.to_device(np.full((self.c, b, self.m), kernels.NEG, dtype=self.dtype))
    idx = backend.to_device(np.full((self.c, b, self.m), -1, dtype=np.int32))
    w3 = backend.to_device(w3)
    fn = self._fns[nearest]
    for chunk in (self.chunks if self.stream else self.device_chunks):
      vals, idx = fn(w3, *chunk, vals, idx)
    vals, idx = backend.to_numpy(vals)[groups, pos], backend.to_numpy(idx)[groups, pos]
    return vals.astype(np.float64), idx.astype(np.int64)

  def exact_max(self, a, w: np.ndarray, groups: Optional[np.ndarray] = None) -> np.ndarray:
    """max <w, a_i> (B,) over each row's own class's points, float64 on the host."""
    top = np.full(w.shape[0], -np.inf)
    for k in np.unique(groups):
      sel = groups == k
      top[sel] = certificate.exact_max(a, 0.0, w[sel], rows=self.members[k])
    return top


@functools.lru_cache(maxsize=16)
def group_fn(strategy, nearest: bool):
  """One tf.function per (strategy, pricing kind), shared by every pricer and solve, so it traces
  once per shape (not once per solve, per class hull and per split).

  One call prices one group of chunks, one per replica, and merges them into the running list.
  Each replica prices its own chunk from an empty list (never from the running top-m: handing the
  running list to every replica and merging their outputs counted it replicas + 1 times, and its
  candidates came back as duplicates). The running list and the replicas' lists are disjoint and
  merged once, running first, then replicas in chunk order: the same order, and so the same
  tie-breaking, as the one-device chunk loop. The strategy is one host's (mirrored, or a
  worker's local replicas, `sharding.layout`), whose local results list every replica in
  replica-id order, the order the chunks were handed out in.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  price = backend.compile_fn(kernels.price_chunk, nearest=nearest)
  merge = backend.compile_fn(kernels.merge_top)

  def one_group(w, group, run_vals, run_idx, empty_vals, empty_idx):
    def replica_fn(w, ch):
      return price(w, ch[0], ch[1], ch[2], ch[3], empty_vals, empty_idx)
    out = strategy.run(replica_fn, args=(w, group))
    vals = strategy.experimental_local_results(out[0])
    idx = strategy.experimental_local_results(out[1])
    return merge([run_vals, *vals], [run_idx, *idx])
  return tf.function(one_group)
