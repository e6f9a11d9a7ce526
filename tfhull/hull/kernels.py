"""The solver's numeric core in `keras.ops`: pricing, working-set insertion, restricted solve.

Every function here is pure, has static shapes and is compiled once per shape by `backend.compile`
(`tf.function(jit_compile=True)` under TensorFlow, `jax.jit` under JAX). Shapes:
  B queries per batch, d dimensions, C rows per chunk of the training matrix,
  K working-set slots per query, m atoms priced/added per pass.
All points are centred (the training mean subtracted) before they get here.
"""

from keras import ops

# Scores of padded or invalid rows; far below any real score, safe in float32.
NEG = -3.0e38


def batched_rows(x, idx):
  """x[b, idx[b, j]] for x (B, N, ...) and int idx (B, J): (B, J, ...), as one row gather."""
  bsz, n = x.shape[0], x.shape[1]
  flat = ops.reshape(x, (bsz * n,) + tuple(x.shape[2:]))
  offsets = ops.arange(bsz, dtype="int32")[:, None] * n
  return ops.take(flat, ops.cast(idx, "int32") + offsets, axis=0)


def price_chunk(w, chunk, sqnorm, valid, offset, run_vals, run_idx, *, nearest: bool):
  """Merges one chunk's best m atoms per query into a running top-m.

  Args:
    w: (B, d) query-side vectors: the queries x for `nearest`, the residuals r otherwise.
    chunk: (C, d) centred training rows; sqnorm: (C,) their squared norms; valid: (C,) bool.
    offset: () int32, global index of the chunk's first row.
    run_vals, run_idx: (B, m) running top-m scores (descending) and global indices.
    nearest: score 2<a, x> - |a|^2 (= |x|^2 - |x - a|^2, nearest first) instead of <a, r>
      (the Frank-Wolfe pricing: largest first; its max gives the duality gap).

  Returns:
    (B, m) merged scores and int32 global indices.
  """
  m = run_vals.shape[1]
  scores = ops.matmul(w, ops.transpose(chunk))
  if nearest:
    scores = 2.0 * scores - sqnorm[None, :]
  scores = ops.where(valid[None, :], scores, ops.cast(NEG, scores.dtype))
  vals, idx = ops.top_k(scores, k=m, sorted=True)
  idx = ops.cast(idx, "int32") + offset
  vals = ops.concatenate([run_vals, vals], axis=1)
  idx = ops.concatenate([run_idx, idx], axis=1)
  vals, pos = ops.top_k(vals, k=m, sorted=True)
  return vals, ops.take_along_axis(idx, pos, axis=1)


def price_classes(w, chunk, sqnorm, index, run_vals, run_idx, *, nearest: bool):
  """`price_chunk` for G class hulls at once: each class's queries score only its own points.

  One batched GEMM: queries are grouped by class (padded to b rows per class), and the points
  are sorted by class, each class's rows padded to C (a chunk of its rows); FLOPs are those of
  the G separate pricing passes, not G times one over all points.

  Args:
    w: (G, b, d) query-side vectors, w[g] those of the queries asking about class g.
    chunk: (G, C, d) centred rows of each class; sqnorm: (G, C) their squared norms.
    index: (G, C) int32 global row index of each, -1 for padding (never listed).
    run_vals, run_idx: (G, b, m) running top-m (padding rows of a class with fewer than m points
      keep score NEG and index -1).

  Returns:
    (G, b, m) merged scores and int32 global indices.
  """
  m = run_vals.shape[2]
  scores = ops.einsum("gbd,gcd->gbc", w, chunk)
  if nearest:
    scores = 2.0 * scores - sqnorm[:, None, :]
  scores = ops.where(index[:, None, :] >= 0, scores, ops.cast(NEG, scores.dtype))
  vals, pos = ops.top_k(scores, k=min(m, chunk.shape[1]), sorted=True)
  idx = ops.take_along_axis(ops.broadcast_to(index[:, None, :], scores.shape), pos, axis=2)
  idx = ops.where(vals > NEG / 2, idx, -1)
  vals = ops.concatenate([run_vals, vals], axis=2)
  idx = ops.concatenate([run_idx, idx], axis=2)
  vals, pos = ops.top_k(vals, k=m, sorted=True)
  return vals, ops.take_along_axis(idx, pos, axis=2)


def take_rows(x, rows):
  """x[rows] along the first (batch) axis: x (B, ...), rows (b,) int32 -> (b, ...)."""
  return ops.take(x, rows, axis=0)


def combine(alpha, vecs):
  """(B, d) projections V^T alpha of the working sets, from alpha (B, K) and vecs (B, K, d)."""
  return ops.einsum("bk,bkd->bd", alpha, vecs)


def merge_top(vals_list, idx_list):
  """Merges several (B, m) top-m lists (e.g. one per replica) into one."""
  m = vals_list[0].shape[1]
  vals, pos = ops.top_k(ops.concatenate(vals_list, axis=1), k=m, sorted=True)
  return vals, ops.take_along_axis(ops.concatenate(idx_list, axis=1), pos, axis=1)


def _slot_plan(slots, alpha, new_idx, ok):
  """Where m new atoms (B, m) go in the working set (B, k): duplicates of present atoms dropped
  from `ok`; `target` (B, m) distinct slots, free ones first (in index order), then occupied;
  `order` (B, m) the candidates ok-first (stable), so the j-th ok candidate meets the j-th
  target; `free` (B, k) the empty or zero-weight slots."""
  k, m = slots.shape[1], new_idx.shape[1]
  dup = ops.any(new_idx[:, :, None] == slots[:, None, :], axis=2)
  ok = ops.logical_and(ok, ops.logical_not(dup))
  free = ops.logical_or(slots < 0, alpha <= 0)
  key = ops.where(free, 2 * k - ops.arange(k, dtype="int32")[None, :],
                  k - ops.arange(k, dtype="int32")[None, :])
  _, target = ops.top_k(ops.cast(key, "float32"), k=m, sorted=True)
  target = ops.cast(target, "int32")
  order = ops.argsort(ops.cast(ops.logical_not(ok), "int32") * m + ops.arange(m)[None, :], axis=1)
  return ok, free, target, order


def insert_atoms(slots, vecs, gram, alpha, new_idx, new_vecs, ok):
  """Puts up to m new atoms into free working-set slots (weight 0) of each query.

  Args:
    slots: (B, K) int32 global indices, -1 for empty. vecs: (B, K, d) the atoms.
    gram: (B, K, K) working-set Gram matrices. alpha: (B, K) weights.
    new_idx: (B, m) int32 candidate atoms; new_vecs: (B, m, d); ok: (B, m) bool, whether to add.

  Returns:
    Updated (slots, vecs, gram). Candidates already in the set, or beyond the free slots, are
    skipped; weights are unchanged (new atoms enter with weight 0). Only m rows per query are
    written (scatter), so the cost is O(B m K d) for the new Gram rows. Compiled by
    `backend.compile_fn`, slots, vecs and gram are donated under JAX (updated in place): use only
    the returned arrays afterwards.
  """
  bsz, k = slots.shape
  m = new_idx.shape[1]
  ok, free, target, order = _slot_plan(slots, alpha, new_idx, ok)
  cand_idx = ops.take_along_axis(new_idx, order, axis=1)
  cand_ok = ops.take_along_axis(ok, order, axis=1)
  cand_vecs = batched_rows(new_vecs, order)
  write = ops.logical_and(cand_ok, ops.take_along_axis(free, target, axis=1))  # (B, m)
  # Unwritten targets get their current contents back, so every scatter below is a no-op there.
  old_vecs = batched_rows(vecs, target)
  put_vecs = ops.where(write[:, :, None], cand_vecs, old_vecs)
  put_idx = ops.where(write, cand_idx, ops.take_along_axis(slots, target, axis=1))
  flat_pos = ops.reshape(target + ops.arange(bsz, dtype="int32")[:, None] * k, (-1, 1))
  vecs = ops.reshape(ops.scatter_update(ops.reshape(vecs, (bsz * k, -1)), flat_pos,
                                        ops.reshape(put_vecs, (bsz * m, -1))), vecs.shape)
  slots = ops.reshape(ops.scatter_update(ops.reshape(slots, (-1,)), flat_pos,
                                         ops.reshape(put_idx, (-1,))), slots.shape)
  # New Gram rows <v_target, v_l> against the updated set; then mirror them into the columns.
  rows = ops.einsum("bjd,bkd->bjk", put_vecs, vecs)  # (B, m, K)
  gram = ops.reshape(ops.scatter_update(ops.reshape(gram, (bsz * k, k)), flat_pos,
                                        ops.reshape(rows, (bsz * m, k))), gram.shape)
  written = ops.any(target[:, :, None] == ops.arange(k, dtype="int32"), axis=1)
  gram = ops.where(written[:, None, :], ops.transpose(gram, (0, 2, 1)), gram)
  return slots, vecs, gram


def restricted_solve(x, vecs, gram, alpha, slots, active, abs_tol2, subspace_r2, inner_rel, *,
                     refresh_every: int, max_refreshes: int, cg_steps: int = 8,
                     subspace_every: int = 4, gram_state: bool = False):
  """Pairwise Frank-Wolfe with exact line search and subspace steps on each query's working set.

  Minimises 1/2 |x - V^T alpha|^2 over the simplex restricted to the filled slots. Steps are done
  in Gram space (O(BK) each); every `refresh_every` steps the residual r = x - V^T alpha and the
  gradient -V r are recomputed (exactly in p-space from vecs, or with `gram_state` from the
  query-shifted Gram matrix G'_kl = <v_k - x, v_l - x> alone; vecs is then unused, any (B, 1, 1)
  placeholder), which also decides convergence:
  restricted duality gap <= inner_rel * |r|^2, or |r|^2 <= abs_tol2.

  Args:
    x: (B, d) centred queries. vecs: (B, K, d). gram: (B, K, K). alpha: (B, K) on the simplex.
    slots: (B, K) int32 (-1 empty). active: (B,) bool, queries still being solved.
    abs_tol2: (B,) squared absolute tolerance. subspace_r2: (B,) squared residual below which a
      query also takes subspace steps. inner_rel: () relative-gap target.

  Returns:
    alpha (B, K), iterations (B,) int32 spent per query.
  """
  dtype = x.dtype
  filled = slots >= 0
  big = ops.cast(3.0e38, dtype)
  tiny = ops.cast(1e-30, dtype)

  def exact_state(alpha):
    if gram_state:
      # Query-shifted Gram G'_kl = <v_k - x, v_l - x>: grad = G' alpha = <v_k, -r> + <x, r> (the
      # gradient up to a constant, which no step or gap depends on), |r|^2 = alpha.G' alpha,
      # O(B K^2) and without cancellation; a query sitting on a point has G' row 0 exactly.
      grad = ops.einsum("bkl,bl->bk", gram, alpha)
      return grad, ops.maximum(ops.sum(alpha * grad, axis=1), 0.0)
    r = x - ops.einsum("bk,bkd->bd", alpha, vecs)
    grad = -ops.einsum("bkd,bd->bk", vecs, r)
    r2 = ops.sum(r * r, axis=1)
    return grad, r2

  def todo(alpha, grad, r2):
    fw_gap = ops.sum(alpha * grad, axis=1) - ops.min(ops.where(filled, grad, big), axis=1)
    done = ops.logical_or(fw_gap <= inner_rel * r2, r2 <= abs_tol2)
    return ops.logical_and(active, ops.logical_not(done))

  def step(_, carry):
    alpha, grad, its, upd = carry
    s = ops.argmin(ops.where(filled, grad, big), axis=1)[:, None]
    v = ops.argmax(ops.where(alpha > 0, grad, -big), axis=1)[:, None]
    g_s = ops.take_along_axis(grad, s, axis=1)[:, 0]
    g_v = ops.take_along_axis(grad, v, axis=1)[:, 0]
    row_s = batched_rows(gram, s)[:, 0, :]  # (B, K)
    row_v = batched_rows(gram, v)[:, 0, :]
    k_ss = ops.take_along_axis(row_s, s, axis=1)[:, 0]
    k_vv = ops.take_along_axis(row_v, v, axis=1)[:, 0]
    k_sv = ops.take_along_axis(row_s, v, axis=1)[:, 0]
    a_v = ops.take_along_axis(alpha, v, axis=1)[:, 0]
    curv = k_ss + k_vv - 2.0 * k_sv
    gap = g_v - g_s
    gamma = ops.where(curv > tiny, gap / ops.maximum(curv, tiny), a_v)
    gamma = ops.clip(gamma, 0.0, a_v)
    gamma = ops.where(ops.logical_and(upd, gap > 0), gamma, ops.zeros_like(gamma))
    drop = ops.logical_and(gamma >= a_v, gamma > 0)
    onehot_s = ops.one_hot(s[:, 0], alpha.shape[1], dtype=dtype)
    onehot_v = ops.one_hot(v[:, 0], alpha.shape[1], dtype=dtype)
    alpha = alpha + gamma[:, None] * (onehot_s - onehot_v)
    # A drop step zeroes the away atom exactly (no rounding residue).
    alpha = ops.where(ops.logical_and(drop[:, None], onehot_v > 0), ops.zeros_like(alpha), alpha)
    alpha = ops.maximum(alpha, 0.0)
    grad = grad + gamma[:, None] * (row_s - row_v)
    return alpha, grad, its + ops.cast(upd, "int32"), upd

  def subspace_step(alpha, grad, upd):
    """Wolfe-style minor cycle: towards the affine minimiser on the current support.

    Approximately solves min 1/2 d^T G d + grad^T d s.t. sum(d) = 0, d = 0 off the support by
    projected conjugate gradients (`cg_steps` batched (K, K) mat-vecs), then takes the exact
    line-search step along d, cut where the first weight reaches zero. Pairwise steps alone crawl
    on faces of the hull; this is the paper's "subspace minimisation".
    """
    on_f = ops.cast(alpha > 0, dtype)
    count = ops.maximum(ops.sum(on_f, axis=1, keepdims=True), 1.0)

    def proj(v):
      v = v * on_f
      return (v - ops.sum(v, axis=1, keepdims=True) / count) * on_f

    def cg(_, carry):
      d, r, p, rr = carry
      gp = proj(ops.einsum("bkl,bl->bk", gram, p))
      pgp = ops.sum(p * gp, axis=1)
      a = ops.where(ops.logical_and(pgp > tiny, rr > tiny), rr / ops.maximum(pgp, tiny),
                    ops.zeros_like(rr))
      d = d + a[:, None] * p
      r = r - a[:, None] * gp
      rr_new = ops.sum(r * r, axis=1)
      beta = ops.where(rr > tiny, rr_new / ops.maximum(rr, tiny), ops.zeros_like(rr))
      return d, r, r + beta[:, None] * p, rr_new

    r0 = -proj(grad)
    d, _, _, _ = ops.fori_loop(0, cg_steps, cg,
                               (ops.zeros_like(alpha), r0, r0, ops.sum(r0 * r0, axis=1)))
    slope = ops.sum(grad * d, axis=1)
    curv = ops.einsum("bk,bkl,bl->b", d, gram, d)
    t_star = ops.where(curv > tiny, -slope / ops.maximum(curv, tiny), ops.zeros_like(slope))
    ratio = ops.where(d < 0, alpha / ops.minimum(d, -tiny), -ops.ones_like(alpha) * big)
    t_max = -ops.max(ratio, axis=1)  # Largest step keeping every weight >= 0.
    t = ops.clip(ops.minimum(t_star, t_max), 0.0, 1e30)
    ok = ops.logical_and(upd, ops.logical_and(slope < 0, ops.all(ops.isfinite(d), axis=1)))
    t = ops.where(ok, t, ops.zeros_like(t))
    new = alpha + t[:, None] * d
    hit = ops.logical_and(ops.logical_and(d < 0, (t >= t_max)[:, None]),
                          ops.abs(ratio + t[:, None]) <= 1e-6 * ops.abs(t[:, None]))
    new = ops.where(ops.logical_or(hit, new < 0), ops.zeros_like(new), new)
    return new / ops.sum(new, axis=1, keepdims=True)

  def outer_cond(i, alpha, its, upd):
    return ops.logical_and(i < max_refreshes, ops.any(upd))

  def outer_body(i, alpha, its, upd):
    grad, _ = exact_state(alpha)
    alpha, grad, its, upd = ops.fori_loop(0, refresh_every, step, (alpha, grad, its, upd))
    # Renormalise against drift, take the subspace step, then recheck convergence exactly.
    alpha = alpha / ops.sum(alpha, axis=1, keepdims=True)
    grad, r2 = exact_state(alpha)
    if cg_steps > 0:
      # Only for queries near or inside the hull (|r|^2 <= subspace_r2), where pairwise steps
      # zig-zag on a face; every `subspace_every`-th round, so cheap rounds stay cheap.
      gate = ops.logical_and(upd, r2 <= subspace_r2)
      alpha = ops.cond(ops.logical_and(i % subspace_every == subspace_every - 1, ops.any(gate)),
                       lambda: subspace_step(alpha, grad, gate), lambda: alpha)
    grad, r2 = exact_state(alpha)
    return i + 1, alpha, its, todo(alpha, grad, r2)

  grad, r2 = exact_state(alpha)
  its = ops.zeros(alpha.shape[:1], dtype="int32")
  _, alpha, its, _ = ops.while_loop(
      outer_cond, outer_body, (ops.convert_to_tensor(0), alpha, its, todo(alpha, grad, r2)))
  return alpha, its


def insert_gram(slots, gram, alpha, new_idx, ok, table, slot_rows, new_rows, x):
  """`insert_atoms` without a (B, K, d) working-set buffer: the state is Gram-space only.

  The working-set vectors are gathered from `table` (the centred points on the device, or a
  host-gathered subset of them) for the new Gram rows only, so no (B, K, d) array is kept or
  copied between calls.

  Args:
    slots: (B, K) int32 global indices, -1 empty. gram: (B, K, K) query-shifted Gram
      <v_k - x, v_l - x>.
    alpha: (B, K) weights. new_idx: (B, m) int32 candidates (global); ok: (B, m) bool.
    table: (T, d) centred point rows; slot_rows: (B, K) int32 rows of `table` holding the slots'
      points (any valid row for empty slots); new_rows: (B, m) int32 rows holding the candidates'.
    x: (B, d) centred queries.

  Returns:
    Updated (slots, gram, slot_rows); weights are unchanged (new atoms enter at weight 0).
  """
  k = slots.shape[1]
  m = new_idx.shape[1]
  dtype = gram.dtype
  ok, free, target, order = _slot_plan(slots, alpha, new_idx, ok)
  cand_idx = ops.take_along_axis(new_idx, order, axis=1)
  cand_rows = ops.take_along_axis(new_rows, order, axis=1)
  cand_ok = ops.take_along_axis(ok, order, axis=1)
  write = ops.logical_and(cand_ok, ops.take_along_axis(free, target, axis=1))  # (B, m)
  # hit[b, j, l]: candidate j is written into slot l.
  hit = ops.logical_and(target[:, :, None] == ops.arange(k, dtype="int32")[None, None, :],
                        write[:, :, None])
  written = ops.any(hit, axis=1)  # (B, K)
  hit_i = ops.cast(hit, "int32")
  slots = ops.where(written, ops.sum(hit_i * cand_idx[:, :, None], axis=1), slots)
  slot_rows = ops.where(written, ops.sum(hit_i * cand_rows[:, :, None], axis=1), slot_rows)
  vecs = ops.take(table, ops.maximum(slot_rows, 0), axis=0) - x[:, None, :]  # (B, K, d), transient.
  cand_vecs = ops.take(table, ops.maximum(cand_rows, 0), axis=0) - x[:, None, :]  # (B, m, d)
  rows = ops.einsum("bjd,bkd->bjk", cand_vecs, vecs)                 # (B, m, K)
  hit_f = ops.cast(hit, dtype)
  new_gram = ops.einsum("bjk,bjl->bkl", hit_f, rows)                 # Row l <- its candidate's.
  gram = ops.where(written[:, :, None], new_gram, gram)
  gram = ops.where(written[:, None, :], ops.transpose(gram, (0, 2, 1)), gram)
  return slots, gram, slot_rows
