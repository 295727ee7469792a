"""NWB files (pynwb): ophys traces or sorted units, optionally cut into trials.

* ophys: the first ``RoiResponseSeries`` found inside a ``DfOverF`` container (preferred) or a
  ``Fluorescence`` container in any processing module; data are ``(T, N)`` (NWB stores time first).
* units: each unit's ``spike_times`` binned into counts of width ``bin_size`` seconds.
* a ``trials`` table (``start_time``, ``stop_time``) becomes a list of trials.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmneuro.io.preprocess import bin_spikes
from ssmneuro.io.recording import Recording, as_recording


def read_nwb(path, source: str = "auto", series: str | None = None, bin_size: float = 0.05,
             use_trials: bool = True) -> Recording:
    """Read neural data from an NWB file.

    Args:
        path: the ``.nwb`` file.
        source: ``"ophys"`` (calcium traces), ``"units"`` (spike times -> counts) or ``"auto"`` (ophys if
            the file has any RoiResponseSeries, else units).
        series: name of the RoiResponseSeries to read (default: the first one, DfOverF first).
        bin_size: seconds per bin for spike counts (units only).
        use_trials: cut the recording at the rows of the file's trials table, if it has one.
    Returns: a Recording (one trial, or one per row of the trials table).
    """
    import pynwb

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if source not in ("auto", "ophys", "units"):
        raise ValueError(f"source = {source!r}; choose 'auto', 'ophys' or 'units'")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        found = _roi_series(nwb)
        if source == "auto":
            source = "ophys" if found else "units"
        if source == "ophys":
            x, times = _read_ophys(found, series, path)
        else:
            x, times = _read_units(nwb, bin_size, path)
        windows = _trial_windows(nwb) if use_trials else None
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    if windows:
        trials = [x[(times >= a) & (times < b)] for a, b in windows]
        trials = [t for t in trials if t.shape[0] >= 2]
        if not trials:
            raise ValueError(f"{path.name}: no trial of the trials table holds 2 or more frames")
        return as_recording(trials, dt=dt, name=path.stem, allow_fewer_frames_than_neurons=True)
    return as_recording(x, dt=dt, name=path.stem)


def _roi_series(nwb) -> list:
    """All RoiResponseSeries in processing modules, DfOverF containers first."""
    from pynwb.ophys import DfOverF, Fluorescence

    dff, fluo = [], []
    for module in nwb.processing.values():
        for container in module.data_interfaces.values():
            if isinstance(container, DfOverF):
                dff.extend(container.roi_response_series.values())
            elif isinstance(container, Fluorescence):
                fluo.extend(container.roi_response_series.values())
    return dff + fluo


def _read_ophys(found, series, path):
    if not found:
        raise ValueError(f"{path.name} has no ophys RoiResponseSeries (DfOverF / Fluorescence); try "
                         "source='units' for spike data")
    if series is not None:
        match = [s for s in found if s.name == series]
        if not match:
            raise ValueError(f"{path.name} has no RoiResponseSeries {series!r}; it has "
                             f"{[s.name for s in found]}")
        found = match
    s = found[0]
    x = np.asarray(s.data[:], dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if s.timestamps is not None:
        times = np.asarray(s.timestamps[:], dtype=np.float64)
    else:
        rate = s.rate if s.rate else 1.0
        times = (s.starting_time or 0.0) + np.arange(x.shape[0]) / rate
    return x, times


def _read_units(nwb, bin_size, path):
    if nwb.units is None or len(nwb.units) == 0:
        raise ValueError(f"{path.name} has neither ophys traces nor a units table; nothing to read")
    trains = [np.asarray(nwb.units["spike_times"][i], dtype=np.float64) for i in range(len(nwb.units))]
    windows = _trial_windows(nwb)
    start = min(a for a, _ in windows) if windows else None
    stop = max(b for _, b in windows) if windows else None
    counts, edges = bin_spikes(trains, bin_size, start=start, stop=stop)
    return counts, edges[:-1]


def _trial_windows(nwb):
    if nwb.trials is None or len(nwb.trials) == 0:
        return None
    table = nwb.trials
    return list(zip(np.asarray(table["start_time"][:], float), np.asarray(table["stop_time"][:], float)))
