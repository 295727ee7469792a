"""pynapple objects: a ``TsdFrame`` of traces or a ``TsGroup`` of spike trains."""

from __future__ import annotations

import numpy as np

from ssmneuro.io.recording import Recording, as_recording


def from_pynapple(obj, bin_size: float | None = None, epochs=None, name: str = "pynapple") -> Recording:
    """Turn a pynapple ``TsdFrame`` (time x neurons) or ``TsGroup`` (spike trains) into a Recording.

    Args:
        obj: ``nap.TsdFrame`` or ``nap.TsGroup``.
        bin_size: seconds per bin; required for a TsGroup (spike counts), ignored for a TsdFrame.
        epochs: optional ``nap.IntervalSet``; each interval becomes one trial.
    """
    import pynapple as nap

    if isinstance(obj, nap.TsGroup):
        if bin_size is None:
            raise ValueError("a TsGroup holds spike times; pass bin_size (seconds) to count them")
        intervals = epochs if epochs is not None else obj.time_support
        pieces = [obj.count(bin_size, ep=intervals[i:i + 1]) for i in range(len(intervals))]
        dt = float(bin_size)
        arrays = [np.asarray(p.values, dtype=np.float64) for p in pieces]
    elif isinstance(obj, nap.TsdFrame):
        pieces = [obj] if epochs is None else [obj.restrict(epochs[i:i + 1]) for i in range(len(epochs))]
        arrays = [np.asarray(p.values, dtype=np.float64) for p in pieces]
        t = np.asarray(obj.t)
        dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    else:
        raise ValueError(f"got a {type(obj).__name__}; pass a pynapple TsdFrame (traces) or TsGroup (spikes)")
    arrays = [a for a in arrays if a.shape[0] >= 2]
    if not arrays:
        raise ValueError("no epoch holds 2 or more frames; check epochs and bin_size")
    return as_recording(arrays, dt=dt, name=name, allow_fewer_frames_than_neurons=len(arrays) > 1)
