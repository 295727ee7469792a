"""Ragged trials -> padded buckets and back.

The user-facing input is a list of (T_i, N) arrays of different lengths. The inference core works on
one fixed-length array at a time, vmapped over a batch; to keep the number of compiled shapes small,
trials are grouped into a few buckets, each padded to its longest trial. Padding is at the end, and
padded steps contribute exactly nothing:

- Kalman (``lgssm``): pass ``mask = valid_mask(...)[..., None] & observed`` (a fully unobserved row is
  a pure prediction step that adds 0 to the log-likelihood);
- HMM (``hmm``): a log-likelihood row of zeros adds nothing (normalized transitions); pass
  ``length=`` to also keep padded transitions out of the expected transition counts;
- block-tridiagonal Gaussians: padded blocks J_diag = I, J_lower = 0, h = 0 are decoupled; they leave
  the valid blocks' moments and log det J unchanged and add D/2 log 2π each to the log normalizer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def as_trials(data) -> list[np.ndarray]:
    """Validate the user's data and return it as a list of (T_i, N) float arrays.

    Args:
        data: one (T, N) array, a (B, T, N) array of equal-length trials, or a list/tuple of (T_i, N) arrays.

    Returns:
        list of (T_i, N) float numpy arrays (float64 input stays float64; anything else becomes float32).

    Raises:
        ValueError naming the trial index: not 2-D, differing N, NaN/inf entries (use a mask for missing
        data), or fewer than 2 time steps.
    """
    if isinstance(data, (list, tuple)):
        arrays = list(data)
        if not arrays:
            raise ValueError("data is an empty list: pass at least one (T, N) trial.")
    else:
        array = np.asarray(data)
        if array.ndim == 3:
            arrays = list(array)
        elif array.ndim == 2:
            arrays = [array]
        else:
            raise ValueError(
                f"data must be a (T, N) array, a (B, T, N) array or a list of (T_i, N) arrays; got shape "
                f"{array.shape} (for a single channel use x[:, None]).")
    trials = []
    for i, x in enumerate(arrays):
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"trial {i} must be 2-D (T_i, N); got shape {x.shape} (for a single channel use x[:, None]).")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"trial {i} must be numeric; got dtype {x.dtype}.")
        if np.iscomplexobj(x):
            raise ValueError(f"trial {i} is complex; state space models here take real-valued data.")
        x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
        if x.shape[1] != np.asarray(arrays[0]).shape[-1]:
            raise ValueError(
                f"trial {i} has {x.shape[1]} channels but trial 0 has {np.asarray(arrays[0]).shape[-1]}: "
                "every trial needs the same N.")
        if x.shape[0] < 2:
            raise ValueError(f"trial {i} has {x.shape[0]} time steps; each trial needs T_i >= 2.")
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"trial {i} contains NaN or inf (first at time {bad[0]}, channel {bad[1]}); "
                "mark missing entries with a mask instead (masks=..., True = observed) and fill them with 0.")
        trials.append(x)
    return trials


def pad_trials(arrays: Sequence, length: int | None = None, fill=0.0):
    """Stack trials of different lengths, padding at the end.

    Args:
        arrays: list of (T_i, ...) arrays with the same trailing shape.
        length: padded length (default max T_i); must be >= every T_i.
        fill: value of the padded entries.

    Returns:
        (padded (B, length, ...) numpy array, lengths (B,) int numpy array).
    """
    arrays = [np.asarray(x) for x in arrays]
    if not arrays:
        raise ValueError("pad_trials needs at least one array.")
    tail = arrays[0].shape[1:]
    for i, x in enumerate(arrays):
        if x.ndim < 1 or x.shape[1:] != tail:
            raise ValueError(f"trial {i} has shape {x.shape}; expected (T_i,) + {tail} like trial 0.")
    lengths = np.array([x.shape[0] for x in arrays], dtype=np.int32)
    length = int(lengths.max()) if length is None else int(length)
    if np.any(lengths > length):
        i = int(np.argmax(lengths > length))
        raise ValueError(f"trial {i} has {lengths[i]} steps, more than the padded length {length}.")
    dtype = np.result_type(*arrays)
    padded = np.full((len(arrays), length) + tail, fill, dtype=dtype)
    for i, x in enumerate(arrays):
        padded[i, : x.shape[0]] = x
    return padded, lengths


def unpad(padded, lengths) -> list:
    """Inverse of ``pad_trials``: padded (B, Tmax, ...) and lengths (B,) -> list of (T_i, ...)."""
    lengths = np.asarray(lengths)
    if len(padded) != len(lengths):
        raise ValueError(f"padded has {len(padded)} trials but lengths has {len(lengths)}.")
    return [padded[i, : int(n)] for i, n in enumerate(lengths)]


def valid_mask(lengths, Tmax: int):
    """(B, Tmax) bool, True at the valid (unpadded) steps t < T_i. Works on traced lengths."""
    return jnp.arange(Tmax)[None, :] < jnp.asarray(lengths)[:, None]


def bucket_trials(lengths, max_buckets: int = 4) -> list[tuple[np.ndarray, int]]:
    """Group trials into at most ``max_buckets`` padded lengths, minimizing the total padded size.

    Dynamic programming over the sorted distinct lengths (contiguous groups are optimal): the cost of
    a group is (its largest length) x (its number of trials).

    Args:
        lengths: (B,) trial lengths.
        max_buckets: the most distinct padded lengths (= compiled shapes) allowed.

    Returns:
        list of (trial_indices (int array, ascending length), padded_length), shortest bucket first.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.ndim != 1 or lengths.size == 0:
        raise ValueError(f"lengths must be a non-empty 1-D array; got shape {lengths.shape}.")
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1; got {max_buckets}.")
    values, counts = np.unique(lengths, return_counts=True)
    U, G = len(values), min(max_buckets, len(values))
    cum = np.concatenate([[0], np.cumsum(counts)])
    # cost[g, u]: best cost covering values[:u] with g groups; a group values[v:u] costs values[u-1] * (cum[u] - cum[v])
    cost = np.full((G + 1, U + 1), np.inf)
    choice = np.zeros((G + 1, U + 1), dtype=np.int64)
    cost[0, 0] = 0.0
    for g in range(1, G + 1):
        for u in range(1, U + 1):
            v = np.arange(u)
            candidates = cost[g - 1, v] + values[u - 1] * (cum[u] - cum[v])
            choice[g, u] = int(np.argmin(candidates))
            cost[g, u] = candidates[choice[g, u]]
    g = int(np.argmin(cost[1:, U])) + 1
    cuts, u = [], U
    while u > 0:
        v = choice[g, u]
        cuts.append((v, u))
        u, g = v, g - 1
    buckets = []
    for v, u in reversed(cuts):
        members = np.flatnonzero((lengths >= values[v]) & (lengths <= values[u - 1]))
        members = members[np.argsort(lengths[members], kind="stable")]
        buckets.append((members, int(values[u - 1])))
    return buckets


def map_trials(fn: Callable, arrays: Sequence, max_buckets: int = 4) -> list:
    """Apply ``fn(padded_trial (L, ...), length ())`` to every trial, vmapped and jitted per bucket.

    Trials are bucketed (``bucket_trials``) and padded at the end; ``fn`` sees one padded trial and its
    true length (a traced int) and must make the padded steps contribute nothing. Returns the list of
    per-trial outputs in the input order (padded time axes are left as they are; use ``unpad``).
    """
    arrays = [np.asarray(x) for x in arrays]
    lengths = np.array([x.shape[0] for x in arrays])
    batched = jax.jit(jax.vmap(fn))
    outputs = [None] * len(arrays)
    for members, padded_length in bucket_trials(lengths, max_buckets):
        padded, bucket_lengths = pad_trials([arrays[i] for i in members], length=padded_length)
        result = batched(jnp.asarray(padded), jnp.asarray(bucket_lengths))
        for row, i in enumerate(members):
            outputs[i] = jax.tree_util.tree_map(lambda x, row=row: x[row], result)
    return outputs
