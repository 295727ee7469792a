"""Observations -> trials on the fine time grid (validation at the boundary, padding, masks)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ssmneuro.models.gp.variational import TrialData


def _as_list(data):
    if isinstance(data, (list, tuple)):
        return [np.asarray(y, dtype=float) for y in data]
    arr = np.asarray(data, dtype=float)
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3:
        return list(arr)
    raise ValueError(f"data must be (T, N), (B, T, N) or a list of (T_i, N) arrays; got shape {arr.shape}")


def grid_trials(data, dt, times=None, masks=None, counts=False):
    """Place each trial's observations on the grid t_0 + k dt.

    Args:
        data: (T, N) | (B, T, N) | list of (T_i, N).
        dt: grid step.
        times: None (row k is grid step k) or a list of (T_i,) increasing observation times per trial
            (irregular sampling allowed: each observation goes to the nearest grid step; the rest are masked).
        masks: None or list of (T_i, N) bool, True = observed.
        counts: check that observations are non-negative (Poisson / point process).
    Returns:
        list of (y (K_i, N), mask (K_i, N) bool, grid_times (K_i,)).
    """
    ys = _as_list(data)
    if times is not None:
        times = [np.asarray(times, float)] if np.ndim(times[0]) == 0 else [np.asarray(t, float) for t in times]
        if len(times) != len(ys):
            raise ValueError(f"times has {len(times)} trials but data has {len(ys)}")
    if masks is not None:
        masks = _as_list(masks) if not isinstance(masks, (list, tuple)) else [np.asarray(m, bool) for m in masks]
        if len(masks) != len(ys):
            raise ValueError(f"masks has {len(masks)} trials but data has {len(ys)}")
    N = ys[0].shape[1] if ys[0].ndim == 2 else None
    out = []
    for i, y in enumerate(ys):
        if y.ndim != 2 or y.shape[1] != N:
            raise ValueError(f"trial {i}: expected shape (T, {N}), got {y.shape}")
        m = np.ones(y.shape, bool) if masks is None else np.asarray(masks[i], bool)
        if m.shape != y.shape:
            raise ValueError(f"trial {i}: mask shape {m.shape} differs from data shape {y.shape}")
        if not np.all(np.isfinite(y[m])):
            raise ValueError(f"trial {i}: data contain NaN or inf; mask those entries out (masks=...) instead")
        if counts and np.any(y[m] < 0):
            raise ValueError(f"trial {i}: counts must be non-negative for Poisson / point-process emissions")
        y = np.where(m, y, 0.0)
        if times is None:
            grid_t = np.arange(y.shape[0]) * dt
            out.append((y, m, grid_t))
            continue
        t = times[i]
        if t.shape != (y.shape[0],) or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
            raise ValueError(f"trial {i}: times must be a finite increasing (T_i,) array matching the data")
        idx = np.rint((t - t[0]) / dt).astype(int)
        if np.any(np.diff(idx) == 0):
            raise ValueError(f"trial {i}: two observations fall on the same grid step; use a smaller dt")
        K = idx[-1] + 1
        yg, mg = np.zeros((K, N)), np.zeros((K, N), bool)
        yg[idx], mg[idx] = y, m
        out.append((yg, mg, t[0] + np.arange(K) * dt))
    for i, (y, _, _) in enumerate(out):
        if y.shape[0] < 2:
            raise ValueError(f"trial {i} has fewer than 2 grid steps")
    return out


def grid_inputs(inputs, data, gridded, input_dim, dt, times=None):
    """Validate known inputs and place them on each trial's grid (zero-order hold between observation times).

    Args:
        inputs: None | (T, U) | (B, T, U) | list of (T_i, U): the input at each row of ``data`` (same times).
        data: the observations as given to ``grid_trials`` (for the row counts).
        gridded: the output of ``grid_trials(data, dt, times, ...)``.
        input_dim: U, the model's number of inputs (0: inputs must be None or have no columns).
        dt: grid step (as given to ``grid_trials``).
        times: as given to ``grid_trials``. Without times row k is grid step k; with times the input given
            at an observation time holds until the next one.
    Returns:
        None when input_dim == 0, else a list of (K_i, U) arrays (row k drives the step k -> k+1).
    """
    U = int(input_dim)
    ys = _as_list(data)
    if inputs is None:
        if U > 0:
            raise ValueError(f"the model has input_dim={U}: pass inputs, a list of (T_i, {U}) arrays")
        return None
    if isinstance(inputs, (list, tuple)):
        us = [np.asarray(u, dtype=float) for u in inputs]
    else:
        arr = np.asarray(inputs, dtype=float)
        if arr.ndim not in (2, 3):
            raise ValueError(f"inputs must be (T, U), (B, T, U) or a list of (T_i, U) arrays; got shape {arr.shape}")
        us = [arr] if arr.ndim == 2 else list(arr)
    if len(us) != len(ys):
        raise ValueError(f"inputs has {len(us)} trials but data has {len(ys)}")
    if times is not None:
        times = [np.asarray(times, float)] if np.ndim(times[0]) == 0 else [np.asarray(t, float) for t in times]
    out = []
    for i, (u, y, (yg, _, _)) in enumerate(zip(us, ys, gridded)):
        if u.shape != (y.shape[0], U):
            raise ValueError(f"trial {i}: inputs shape {u.shape}, expected ({y.shape[0]}, {U}) (input_dim={U})")
        if not np.all(np.isfinite(u)):
            raise ValueError(f"trial {i}: inputs contain NaN or inf")
        if U == 0:
            continue
        if times is None:
            out.append(u)
            continue
        idx = np.rint((times[i] - times[i][0]) / dt).astype(int)
        hold = np.searchsorted(idx, np.arange(yg.shape[0]), side="right") - 1
        out.append(u[hold])
    return out if U > 0 else None


def pad_grid_trials(gridded, dtype=jnp.float32, inputs=None):
    """Pad gridded trials (and their gridded inputs, list of (K_i, U), if any) to one length
    -> (TrialData with leading axis B, lengths (B,)); padded input rows are zero."""
    lengths = np.array([y.shape[0] for y, _, _ in gridded])
    T = lengths.max()
    B, N = len(gridded), gridded[0][0].shape[1]
    Y, Mk, W = np.zeros((B, T, N)), np.zeros((B, T, N), bool), np.zeros((B, T - 1))
    for b, (y, m, _) in enumerate(gridded):
        Y[b, : len(y)], Mk[b, : len(y)], W[b, : len(y) - 1] = y, m, 1.0
    Uarr = None
    if inputs is not None:
        Uarr = np.zeros((B, T, inputs[0].shape[1]))
        for b, u in enumerate(inputs):
            Uarr[b, : len(u)] = u
        Uarr = jnp.asarray(Uarr, dtype)
    return TrialData(jnp.asarray(Y, dtype), jnp.asarray(Mk), jnp.asarray(W, dtype), Uarr), lengths


def bin_spike_times(spike_times, t_start, t_stop, dt):
    """Spike times per neuron (list of arrays, seconds) -> (K, N) counts on the grid [t_start, t_stop) step dt."""
    K = int(np.round((t_stop - t_start) / dt))
    counts = np.zeros((K, len(spike_times)))
    for n, st in enumerate(spike_times):
        st = np.asarray(st, float)
        st = st[(st >= t_start) & (st < t_stop)]
        np.add.at(counts[:, n], np.minimum(((st - t_start) / dt).astype(int), K - 1), 1.0)
    return counts
