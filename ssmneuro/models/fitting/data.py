"""Validate user data and pack ragged trials into padded buckets (one compiled shape per bucket)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array


class TrialBatch(NamedTuple):
    """A padded bucket of B trials of length Tmax (a leading B axis; per-trial functions see none).

    emissions: (B, T, N)          y_t (0 where padded / masked)
    prev_emissions: (B, T, N)     y_{t-1} (y_0 at t = 0), used by calcium emissions
    masks: (B, T, N) float        1 = observed and inside the trial (calcium: also y_{t-1} observed, t >= 1)
    inputs: (B, T, U)
    valid: (B, T) float           1 inside the trial, 0 in the padding
    """

    emissions: Array
    prev_emissions: Array
    masks: Array
    inputs: Array
    valid: Array


def _as_list(x, name):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return [np.asarray(a) for a in x]
    return [np.asarray(x)]


def validate(model, data, inputs=None, masks=None):
    """-> (ys, us, ms): lists of (T_i, N) float, (T_i, U) float, (T_i, N) bool. ValueError on bad input."""
    ys = _as_list(data, "data")
    if ys is None or len(ys) == 0:
        raise ValueError("data is empty: pass a (T, N) array or a list of (T_i, N) arrays")
    ms = _as_list(masks, "masks")
    us = _as_list(inputs, "inputs")
    N, U = model.emission_dim, model.input_dim
    if ms is not None and len(ms) != len(ys):
        raise ValueError(f"masks has {len(ms)} trials but data has {len(ys)}")
    if us is not None and len(us) != len(ys):
        raise ValueError(f"inputs has {len(us)} trials but data has {len(ys)}")
    if U > 0 and us is None:
        raise ValueError(f"the model has input_dim={U}: pass inputs, a list of (T_i, {U}) arrays")
    out_y, out_u, out_m = [], [], []
    for i, y in enumerate(ys):
        if y.ndim != 2 or y.shape[1] != N:
            raise ValueError(f"trial {i}: data has shape {y.shape}, expected (T, {N}) (emission_dim={N})")
        if y.shape[0] < 2:
            raise ValueError(f"trial {i}: needs at least 2 time steps, got {y.shape[0]}")
        m = np.ones(y.shape, bool) if ms is None else ms[i].astype(bool)
        if m.shape != y.shape:
            raise ValueError(f"trial {i}: masks shape {m.shape} differs from data shape {y.shape}")
        if not np.all(np.isfinite(y[m])):
            raise ValueError(f"trial {i}: data has NaN or inf at observed entries; mask them (masks=False)")
        y = np.where(m, y, 0.0)
        if model.emissions in ("poisson", "bernoulli") and np.any(y < 0):
            raise ValueError(f"trial {i}: {model.emissions} emissions need non-negative data")
        if model.emissions == "bernoulli" and np.any((y != 0) & (y != 1)):
            raise ValueError(f"trial {i}: bernoulli emissions need 0/1 data")
        u = np.zeros((y.shape[0], U)) if us is None else us[i]
        if u.shape != (y.shape[0], U):
            raise ValueError(f"trial {i}: inputs shape {u.shape}, expected ({y.shape[0]}, {U})")
        if not np.all(np.isfinite(u)):
            raise ValueError(f"trial {i}: inputs contain NaN or inf")
        out_y.append(y), out_u.append(u), out_m.append(m)
    return out_y, out_u, out_m


def bucket_lengths(lengths, max_buckets=4):
    """[(trial indices, padded length)] grouping trials of similar length (few compiled shapes)."""
    try:
        from ssmneuro.inference.trials import bucket_trials

        return [(list(map(int, idx)), int(L)) for idx, L in bucket_trials(np.asarray(lengths), max_buckets)]
    except ImportError:  # the core's trials.py not there yet: one bucket
        return [(list(range(len(lengths))), int(max(lengths)))]


def make_batch(model, ys, us, ms, indices, length, dtype) -> TrialBatch:
    """Pad the trials ``indices`` to ``length`` steps and build the per-step arrays."""
    B, N, U = len(indices), model.emission_dim, model.input_dim
    Y = np.zeros((B, length, N)); P = np.zeros((B, length, N)); M = np.zeros((B, length, N))
    X = np.zeros((B, length, U)); V = np.zeros((B, length))
    for b, i in enumerate(indices):
        T = ys[i].shape[0]
        Y[b, :T] = ys[i]
        P[b, :T] = np.concatenate([ys[i][:1], ys[i][:-1]])
        m = ms[i].astype(float)
        if model.emissions == "calcium":  # condition on y_0; y_t needs y_{t-1} observed
            m = m * np.concatenate([np.zeros((1, N)), m[:-1]])
        M[b, :T] = m
        X[b, :T] = us[i]
        V[b, :T] = 1.0
    cast = lambda a: jnp.asarray(a, dtype)
    return TrialBatch(cast(Y), cast(P), cast(M), cast(X), cast(V))


def make_batches(model, ys, us, ms, dtype, max_buckets=4, length=None):
    """-> (tuple of TrialBatch, list of index lists) covering all trials; with ``length``, one bucket of that
    many steps."""
    if length is None:
        groups = bucket_lengths([y.shape[0] for y in ys], max_buckets)
    else:
        groups = [(list(range(len(ys))), int(length))]
    batches = tuple(make_batch(model, ys, us, ms, idx, L, dtype) for idx, L in groups)
    return batches, [idx for idx, _ in groups]


def check_pad_to(pad_to, ys, model):
    """-> (length, neurons) from ``fit(pad_to=...)``, checked against the data and the model."""
    if not (isinstance(pad_to, (tuple, list)) and len(pad_to) == 2
            and all(isinstance(v, (int, np.integer)) for v in pad_to)):
        raise ValueError(f"pad_to must be a pair of integers (num_timesteps, num_neurons), got {pad_to!r}")
    length, neurons = map(int, pad_to)
    longest = max(y.shape[0] for y in ys)
    if length < longest:
        raise ValueError(f"pad_to=({length}, {neurons}): the longest trial has {longest} steps; pad_to[0] must be "
                         "at least that")
    if neurons < model.emission_dim:
        raise ValueError(f"pad_to=({length}, {neurons}): the data have {model.emission_dim} neurons; pad_to[1] "
                         "must be at least that")
    if model.emission_cov == "full" and neurons > model.emission_dim:
        raise ValueError("pad_to cannot add neurons with emission_cov='full' (its update uses rows where every "
                         "neuron is observed); pad only the time axis, pad_to=(length, emission_dim)")
    return length, neurons


def pad_neurons(ys, ms, neurons):
    """Every trial's (T, N) data and masks widened to ``neurons`` columns: zeros, masked (they add nothing to
    any likelihood or sufficient statistic)."""
    widen = lambda a, value: np.pad(a, ((0, 0), (0, neurons - a.shape[1])), constant_values=value)  # noqa: E731
    return [widen(y, 0.0) for y in ys], [widen(m, False) for m in ms]


def unpad_emissions(params, num_neurons):
    """SLDSParams with the emission parameters of the first ``num_neurons`` neurons (every field of every
    emission family has a leading neuron axis)."""
    em = params.emissions
    return params._replace(emissions=type(em)(*(None if a is None else a[:num_neurons] for a in em)))


def unbatch_posteriors(stacked, groups, lengths, num_trials):
    """Split a tuple (one per bucket) of batched Posteriors into a per-trial list trimmed to length."""
    out = [None] * num_trials
    for post, idx in zip(stacked, groups):
        host = jax.tree.map(np.asarray, post)
        for b, i in enumerate(idx):
            T = lengths[i]
            out[i] = type(post)(*(a[b, :T] if a.shape[1] == post.latent_means.shape[1] else a[b, : T - 1]
                                  for a in host))
    return out
