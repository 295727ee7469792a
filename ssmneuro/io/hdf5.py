"""HDF5 recordings: the C. elegans whole-brain imaging files and a generic reader.

The C. elegans files (Dag, Nwabudike, Kang et al., Cell 2023; ``../shared/data/celegans-dag2023``) hold
one freely moving worm each::

    gcamp/trace_array          (T, N) z-scored GCaMP traces, N = 130-146 neurons, T = 800-1137 frames
    timing/timestamp_confocal  (T,)   seconds (about 0.6-0.75 s per frame)
    behavior/reversal_vec      (T,)   1 while the worm reverses (backs up), 0 while it moves forward
    behavior/velocity, head_angle, angular_velocity, pumping  (T,)

:func:`read_celegans` returns them as a :class:`Recording` whose labels are the reversal vector.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ssmneuro.io.recording import Recording, as_recording

CELEGANS_BEHAVIOR = ("velocity", "head_angle", "angular_velocity", "pumping")


def shared_data_dir() -> Path | None:
    """``<repo root>/../shared/data`` if it exists, else None."""
    path = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def celegans_files(data_dir: Path | str | None = None) -> list[Path]:
    """Sorted paths of the C. elegans worms (empty list when the data folder is absent)."""
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        return []
    folder = root / "celegans-dag2023" if (root / "celegans-dag2023").is_dir() else root
    return sorted(folder.glob("*.h5"))


def read_celegans(path, traces: str = "gcamp/trace_array") -> Recording:
    """Read one C. elegans worm: z-scored traces, frame interval, reversal labels, behaviour.

    Args:
        path: an ``.h5`` file of celegans-dag2023.
        traces: which trace array (``gcamp/trace_array``, ``gcamp/trace_array_original`` or
            ``gcamp/traces_array_F_F20``).
    Returns: a single-trial Recording with ``dt`` the median frame interval, ``labels`` the reversal
    vector (0 forward, 1 reversal) and ``behavior`` holding velocity, head angle, angular velocity and
    pumping.
    """
    path = _existing(path)
    with h5py.File(path, "r") as f:
        for key in (traces, "timing/timestamp_confocal", "behavior/reversal_vec"):
            if key not in f:
                raise ValueError(f"{path.name} has no dataset {key!r}; is it a celegans-dag2023 file?")
        x = np.asarray(f[traces], dtype=np.float64)
        stamps = np.asarray(f["timing/timestamp_confocal"], dtype=np.float64)
        reversals = np.asarray(f["behavior/reversal_vec"]).astype(np.int32)
        behavior = {k: [np.asarray(f["behavior/" + k], dtype=np.float32)]
                    for k in CELEGANS_BEHAVIOR if "behavior/" + k in f}
    return as_recording(x, dt=_frame_interval(stamps), labels=reversals, name=path.stem,
                        label_names=("forward", "reversal"), behavior=behavior)


def read_hdf5(path, traces: str, dt: float | None = None, timestamps: str | None = None,
              labels: str | None = None, neurons_by_time: bool = False) -> Recording:
    """Read a recording from any HDF5 file by dataset names.

    Args:
        path: the file.
        traces: dataset holding the ``(T, N)`` traces (``(N, T)`` if ``neurons_by_time``).
        dt: seconds per frame; or give ``timestamps`` (a ``(T,)`` dataset in seconds) instead.
        labels: optional ``(T,)`` dataset of integer behaviour labels.
    """
    path = _existing(path)
    with h5py.File(path, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for key in (traces, timestamps, labels):
            if key is not None and key not in f:
                raise ValueError(f"{path.name} has no dataset {key!r}; it has: {', '.join(names[:20])}")
        x = np.asarray(f[traces], dtype=np.float64)
        if neurons_by_time:
            x = x.T
        if timestamps is not None:
            dt = _frame_interval(np.asarray(f[timestamps], dtype=np.float64))
        lab = None if labels is None else np.asarray(f[labels])
    return as_recording(x, dt=1.0 if dt is None else dt, labels=lab, name=path.stem)


def is_celegans_file(path) -> bool:
    """True when ``path`` is an HDF5 file laid out like celegans-dag2023."""
    try:
        with h5py.File(path, "r") as f:
            return "gcamp/trace_array" in f and "behavior/reversal_vec" in f
    except OSError:
        return False


def _frame_interval(stamps) -> float:
    steps = np.diff(stamps)
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if steps.size == 0:
        raise ValueError("the timestamps do not increase; cannot work out the frame interval, pass dt")
    return float(np.median(steps))


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path
