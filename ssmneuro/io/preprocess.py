"""Preprocessing of traces and spikes: z-score, dF/F, spike binning, dropping silent neurons.

Functions work on a :class:`~ssmneuro.io.recording.Recording` (statistics pooled over all trials,
missing entries ignored) or, for ``bin_spikes`` and ``delta_f_over_f``, on plain arrays.
"""

from __future__ import annotations

import numpy as np

from ssmneuro.io.recording import Recording


def _observed_columns(rec: Recording):
    """All trials stacked: values ``(sum T_i, N)`` and observed-masks ``(sum T_i, N)``."""
    masks = rec.masks or [np.ones(x.shape, bool) for x in rec.traces]
    stacked = np.concatenate(rec.traces)
    mask = np.concatenate(masks)
    return stacked, mask


def neuron_mean_std(rec: Recording):
    """Mean and standard deviation of each neuron over its observed frames: ``(N,), (N,)``."""
    x, m = _observed_columns(rec)
    count = m.sum(0)
    mean = (x * m).sum(0) / count
    var = (((x - mean) * m) ** 2).sum(0) / count
    return mean, np.sqrt(var)


def zscore(rec: Recording) -> Recording:
    """``y = (x - mean_n) / std_n`` per neuron, pooled over trials (missing entries stay 0).

    Raises ValueError naming constant neurons (std 0): drop them first with :func:`drop_silent_neurons`.
    """
    mean, std = neuron_mean_std(rec)
    flat = np.flatnonzero(std <= 1e-12 * np.maximum(1.0, np.abs(mean)))
    if flat.size:
        raise ValueError(f"neuron(s) {flat[:10].tolist()} are constant, so they cannot be z-scored; remove "
                         "them first with ssmneuro.io.drop_silent_neurons(recording)")
    masks = rec.masks or [None] * rec.num_trials
    traces = [_apply_mask(((x - mean) / std).astype(np.float32), m) for x, m in zip(rec.traces, masks)]
    return rec._replace(traces=traces)


def _apply_mask(x, m):
    return x if m is None else np.where(m, x, 0.0).astype(x.dtype)


def delta_f_over_f(fluorescence, percentile: float = 10.0, window: int | None = None):
    """``dF/F = (F - F0) / F0`` per neuron, ``F0`` the given percentile of ``F``.

    Args:
        fluorescence: ``(T, N)`` raw fluorescence (positive).
        percentile: baseline percentile (default 10).
        window: if given, ``F0`` is a running percentile over ``window`` frames centred on each frame
            (corrects slow bleaching); else one baseline per neuron.
    Returns: ``(T, N)`` float32 dF/F.
    """
    f = np.asarray(fluorescence, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"fluorescence has shape {f.shape}; pass a (T, N) array")
    if window is None:
        f0 = np.nanpercentile(f, percentile, axis=0, keepdims=True)
    else:
        half = max(int(window) // 2, 1)
        f0 = np.stack([np.nanpercentile(f[max(0, t - half):t + half + 1], percentile, axis=0)
                       for t in range(f.shape[0])])
    if np.any(f0 <= 0):
        raise ValueError("the fluorescence baseline F0 is <= 0 for some neuron; dF/F needs raw, positive "
                         "fluorescence (is the input already background-subtracted or dF/F?)")
    return ((f - f0) / f0).astype(np.float32)


def bin_spikes(spike_times, bin_size: float, start: float | None = None, stop: float | None = None):
    """Bin spike times into counts.

    Args:
        spike_times: list of N 1-D arrays of spike times in seconds, one per neuron.
        bin_size: bin width in seconds.
        start, stop: time range (defaults: first and last spike).
    Returns: ``(counts (T, N) float32, bin_edges (T + 1,))`` with ``T = ceil((stop - start) / bin_size)``.
    """
    if bin_size is None or not np.isfinite(bin_size) or bin_size <= 0:
        raise ValueError(f"bin_size = {bin_size} is not a positive number of seconds; pass e.g. 0.05")
    trains = [np.asarray(s, dtype=np.float64).ravel() for s in spike_times]
    if not trains:
        raise ValueError("no spike trains given; pass a list with one array of spike times per neuron")
    every = np.concatenate(trains)
    if every.size == 0 and (start is None or stop is None):
        raise ValueError("there are no spikes at all; pass start and stop to bin an empty recording")
    start = float(every.min()) if start is None else float(start)
    stop = float(every.max()) if stop is None else float(stop)
    num_bins = max(int(np.ceil((stop - start) / bin_size - 1e-9)), 1)
    edges = start + bin_size * np.arange(num_bins + 1)
    if every.size and stop >= edges[-1]:  # keep the last spike inside the last bin
        edges[-1] = np.nextafter(stop, np.inf)
    counts = np.stack([np.histogram(s, bins=edges)[0] for s in trains], axis=1)
    return counts.astype(np.float32), edges


def drop_silent_neurons(rec: Recording, min_std: float = 1e-6, min_count: float = 1.0):
    """Remove neurons that carry no signal.

    A neuron is dropped when its standard deviation over observed frames is below ``min_std``
    (constant traces, including all-zero spike counts) or, for count data (non-negative integers), when
    its total count is below ``min_count``.
    Returns: ``(recording, kept (N_kept,) int indices into the original neurons)``.
    """
    x, m = _observed_columns(rec)
    _, std = neuron_mean_std(rec)
    keep = std >= min_std
    if _looks_like_counts(x[m]):
        keep &= (x * m).sum(0) >= min_count
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        raise ValueError("every neuron is silent or constant; there is nothing to fit")
    traces = [t[:, kept] for t in rec.traces]
    masks = None if rec.masks is None else [mm[:, kept] for mm in rec.masks]
    names = None if rec.neuron_names is None else tuple(rec.neuron_names[i] for i in kept)
    return rec._replace(traces=traces, masks=masks, neuron_names=names), kept


def _looks_like_counts(values) -> bool:
    return values.size > 0 and values.min() >= 0 and np.allclose(values, np.round(values))


def split_into_trials(rec: Recording, starts, stops) -> Recording:
    """Cut a single-trial recording into trials ``[starts[i], stops[i])`` (frame indices)."""
    if rec.num_trials != 1:
        raise ValueError("split_into_trials needs a single-trial recording")
    pieces = [(int(a), int(b)) for a, b in zip(starts, stops)]
    T = rec.traces[0].shape[0]
    for i, (a, b) in enumerate(pieces):
        if not 0 <= a < b <= T:
            raise ValueError(f"trial {i} spans frames [{a}, {b}) which is outside [0, {T})")
    cut = lambda arrs: None if arrs is None else [arrs[0][a:b] for a, b in pieces]  # noqa: E731
    behavior = None if rec.behavior is None else {k: cut(v) for k, v in rec.behavior.items()}
    return rec._replace(traces=cut(rec.traces), masks=cut(rec.masks), labels=cut(rec.labels),
                        behavior=behavior)
