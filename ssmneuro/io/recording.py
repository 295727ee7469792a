"""The container every reader returns, and the checks every recording passes through.

A :class:`Recording` holds one or more trials of a neural recording, time first:
``traces[i]`` is a ``(T_i, N)`` float array. Missing values (NaN in the source) are replaced by 0 and
marked ``False`` in ``masks[i]`` so that the models can skip them. ``labels`` are optional per-frame
integer behaviour labels (e.g. 1 = reversal) used only to score the fitted states, never to fit.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np


class Recording(NamedTuple):
    """A validated neural recording.

    Fields:
        traces: list of ``(T_i, N)`` float32 arrays, one per trial (missing entries hold 0).
        masks: list of ``(T_i, N)`` bool arrays, True = observed; ``None`` when nothing is missing.
        dt: seconds per frame (float).
        labels: list of ``(T_i,)`` int arrays of behaviour labels, or ``None``.
        label_names: names of the label values, e.g. ``("forward", "reversal")`` (default
            ``("label 0", "label 1", ...)`` when labels are given).
        neuron_names: ``N`` neuron names, or ``None``.
        name: a short name for reports.
        behavior: dict of extra per-frame behaviour variables, name -> list of ``(T_i, ...)`` arrays.
    """

    traces: list
    masks: list | None = None
    dt: float = 1.0
    labels: list | None = None
    label_names: tuple = ()
    neuron_names: tuple | None = None
    name: str = "recording"
    behavior: dict | None = None

    @property
    def num_neurons(self) -> int:
        return int(self.traces[0].shape[1])

    @property
    def num_trials(self) -> int:
        return len(self.traces)

    @property
    def num_frames(self) -> int:
        """Total number of frames over all trials."""
        return int(sum(t.shape[0] for t in self.traces))

    def describe(self) -> str:
        """One line: name, trials, frames, neurons, frame interval, labels."""
        missing = 0 if self.masks is None else int(sum((~m).sum() for m in self.masks))
        text = (f"{self.name}: {self.num_trials} trial(s), {self.num_frames} frames, "
                f"{self.num_neurons} neurons, dt = {self.dt:.3g} s")
        if missing:
            text += f", {missing} missing values masked"
        if self.labels is not None:
            text += f", labels {list(self.label_names) or 'given'}"
        return text


def as_recording(data, *, dt: float = 1.0, labels=None, masks=None, name: str = "recording",
                 neuron_names=None, label_names=(), behavior=None,
                 allow_fewer_frames_than_neurons: bool = False) -> Recording:
    """Validate ``data`` and wrap it in a :class:`Recording`.

    Args:
        data: a ``(T, N)`` array (time first), a ``(B, T, N)`` array, a list of ``(T_i, N)`` trials,
            or a :class:`Recording` (returned re-validated).
        dt: seconds per frame (> 0).
        labels: optional ``(T,)`` array or list of ``(T_i,)`` integer behaviour labels.
        masks: optional ``(T, N)`` bool array or list of them; True = observed.
        allow_fewer_frames_than_neurons: the orientation check refuses data with fewer frames (in all
            trials together) than neurons, which is almost always an ``(N, T)`` array passed as
            ``(T, N)``; set True if your recording really is that short.

    NaN entries become masked (a warning says how many); inf, empty, 1-D, or constant data raise a
    ``ValueError`` that names the problem and the fix.
    """
    if isinstance(data, Recording):
        return as_recording(data.traces, dt=data.dt, labels=data.labels, masks=data.masks,
                            name=data.name, neuron_names=data.neuron_names,
                            label_names=data.label_names, behavior=data.behavior,
                            allow_fewer_frames_than_neurons=allow_fewer_frames_than_neurons)
    trials = _split_trials(data)
    mask_list = None if masks is None else _split_trials(masks, what="masks")
    if mask_list is not None and len(mask_list) != len(trials):
        raise ValueError(f"got {len(mask_list)} masks for {len(trials)} trials; pass one mask per trial")
    dt = _check_dt(dt)
    traces, out_masks, num_nan = [], [], 0
    for i, trial in enumerate(trials):
        x, m = _check_trial(trial, i, len(trials))
        num_nan += int((~m).sum())
        if mask_list is not None:
            given = np.asarray(mask_list[i], dtype=bool)
            if given.shape != x.shape:
                raise ValueError(f"mask of trial {i} has shape {given.shape} but the traces have shape "
                                 f"{x.shape}; pass masks shaped like the traces (True = observed)")
            m = m & given
        traces.append(np.where(m, x, 0.0).astype(np.float32))
        out_masks.append(m)
    _check_same_neurons(traces)
    _check_orientation(traces, allow_fewer_frames_than_neurons)
    _check_not_constant(traces, out_masks)
    if num_nan:
        warnings.warn(f"{name}: {num_nan} NaN value(s) were found; they are masked out (treated as missing, "
                      "not as zeros) when fitting", stacklevel=2)
    if all(m.all() for m in out_masks):
        out_masks = None
    label_list = None if labels is None else _check_labels(labels, traces)
    if label_list is not None and not label_names:
        label_names = tuple(f"label {i}" for i in range(int(max(lab.max() for lab in label_list)) + 1))
    if neuron_names is not None:
        neuron_names = tuple(str(n) for n in neuron_names)
        if len(neuron_names) != traces[0].shape[1]:
            raise ValueError(f"got {len(neuron_names)} neuron names for {traces[0].shape[1]} neurons")
    return Recording(traces=traces, masks=out_masks, dt=dt, labels=label_list,
                     label_names=tuple(label_names), neuron_names=neuron_names, name=str(name),
                     behavior=behavior)


def _split_trials(data, what="data") -> list:
    if isinstance(data, (list, tuple)):
        if len(data) == 0:
            raise ValueError(f"{what} is an empty list; pass at least one (T, N) trial")
        return list(data)
    arr = np.asarray(data)
    if arr.ndim == 3:
        return list(arr)
    return [arr]


def _check_dt(dt) -> float:
    dt = float(dt)
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt = {dt} is not a positive number of seconds per frame; pass e.g. dt=0.1")
    return dt


def _check_trial(trial, i: int, num_trials: int):
    where = "data" if num_trials == 1 else f"trial {i}"
    try:
        x = np.asarray(trial, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where} is not a numeric array ({err}); pass a (T, N) float array") from None
    if x.ndim == 1:
        raise ValueError(f"{where} is 1-D with shape {x.shape}; pass a (T, N) array, e.g. x[:, None] "
                         "for a single neuron")
    if x.ndim != 2:
        raise ValueError(f"{where} has shape {x.shape}; pass a (T, N) array (time first) or a list "
                         "of them")
    if x.size == 0:
        raise ValueError(f"{where} is empty (shape {x.shape}); pass a recording with frames and neurons")
    if np.isinf(x).any():
        t, n = np.argwhere(np.isinf(x))[0]
        raise ValueError(f"{where} contains inf (first at frame {t}, neuron {n}); replace it with NaN to "
                         "mark it missing, or fix the preprocessing that produced it")
    mask = ~np.isnan(x)
    dead = np.flatnonzero(~mask.any(axis=0))
    if dead.size:
        raise ValueError(f"{where}: neuron(s) {dead[:10].tolist()} are NaN in every frame; drop those "
                         "columns before fitting")
    if x.shape[0] < 2:
        raise ValueError(f"{where} has only {x.shape[0]} frame; a state space model needs at least 2")
    return x, mask


def _check_same_neurons(traces):
    n = traces[0].shape[1]
    for i, x in enumerate(traces):
        if x.shape[1] != n:
            raise ValueError(f"trial {i} has {x.shape[1]} neurons but trial 0 has {n}; every trial must "
                             "record the same neurons (columns)")


def _check_orientation(traces, allow: bool):
    frames = sum(x.shape[0] for x in traces)
    neurons = traces[0].shape[1]
    if frames < neurons and not allow:
        shape = traces[0].shape
        raise ValueError(f"data has shape {shape}: {frames} frames but {neurons} neurons. This looks like a "
                         "neurons x time (N x T) array; ssmneuro expects time first (T x N): pass data.T "
                         "(command line: --neurons-by-time), or, if the recording really is that short, "
                         "allow_fewer_frames_than_neurons=True")


def _check_not_constant(traces, masks):
    values = np.concatenate([x[m] for x, m in zip(traces, masks)])
    if values.size == 0:
        raise ValueError("every value is missing (NaN); there is nothing to fit")
    if np.ptp(values) == 0:
        raise ValueError(f"the data are constant (every observed value is {values[0]:g}); there is "
                         "nothing to fit — check that the right array was loaded")


def _check_labels(labels, traces) -> list:
    label_list = _split_trials(labels, what="labels")
    if len(label_list) != len(traces):
        raise ValueError(f"got labels for {len(label_list)} trials but data has {len(traces)}")
    out = []
    for i, (lab, x) in enumerate(zip(label_list, traces)):
        lab = np.asarray(lab)
        if lab.shape != (x.shape[0],):
            raise ValueError(f"labels of trial {i} have shape {lab.shape}; expected ({x.shape[0]},), one "
                             "integer label per frame")
        if not np.all(np.isfinite(lab)) or not np.allclose(lab, np.round(lab)):
            raise ValueError(f"labels of trial {i} are not integers; pass one integer class per frame")
        out.append(lab.astype(np.int32))
    return out
