"""One entry point for files: :func:`load_recording` picks the reader from the file's extension."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssmneuro.io.hdf5 import is_celegans_file, read_celegans, read_hdf5
from ssmneuro.io.recording import Recording, as_recording

SUFFIXES = (".npy", ".npz", ".csv", ".txt", ".h5", ".hdf5", ".mat", ".nwb")


def load_recording(path, dt: float | None = None, key: str | None = None,
                   labels_key: str | None = None, bin_size: float = 0.05,
                   neurons_by_time: bool = False) -> Recording:
    """Read a recording from a file.

    * ``.npy``: a ``(T, N)`` array (time first).
    * ``.npz``: traces under ``key`` (default: ``traces``, ``data``, ``y`` or the only array), optional
      ``labels`` (``(T,)`` ints), ``label_names`` (strings) and ``dt``.
    * ``.csv`` / ``.txt``: a ``(T, N)`` table of numbers (comma or whitespace separated, no header).
    * ``.h5`` / ``.hdf5``: a celegans-dag2023 worm, or any file with ``key`` naming the traces dataset.
    * ``.mat`` (MATLAB): the ``(T, N)`` array named ``key`` (or the only 2-D array); ``labels_key``
      names optional labels.
    * ``.nwb``: ophys traces or units (binned at ``bin_size`` s), see :func:`ssmneuro.io.read_nwb`.

    Args:
        dt: seconds per frame; overrides what the file says (files without timing default to 1).
        key, labels_key: names of the traces / labels arrays in .npz, .mat and generic HDF5 files.
        bin_size: seconds per bin for NWB spike times.
        neurons_by_time: the array-like formats (.npy, .npz, .csv, .mat, generic HDF5) store ``(N, T)``:
            transpose them.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot read {path.name}: unknown file type {suffix!r}; use one of "
                         f"{', '.join(SUFFIXES)}")
    flip = (lambda x: np.asarray(x).T) if neurons_by_time else np.asarray
    if suffix == ".npy":
        rec = as_recording(flip(np.load(path)), name=path.stem)
    elif suffix == ".npz":
        rec = _read_npz(path, key, labels_key, flip)
    elif suffix in (".csv", ".txt"):
        rec = as_recording(flip(_read_table(path)), name=path.stem)
    elif suffix == ".mat":
        rec = _read_mat(path, key, labels_key, flip)
    elif suffix in (".h5", ".hdf5"):
        if key is None and is_celegans_file(path):
            rec = read_celegans(path)
        elif key is None:
            raise ValueError(f"{path.name} is not a celegans-dag2023 file; name the traces dataset with "
                             "--key (and --labels-key for behaviour labels)")
        else:
            rec = read_hdf5(path, key, labels=labels_key, neurons_by_time=neurons_by_time)
    else:
        from ssmneuro.io.nwb import read_nwb
        rec = read_nwb(path, bin_size=bin_size)
    return rec if dt is None else as_recording(rec._replace(dt=dt))


def _read_npz(path, key, labels_key, flip):
    with np.load(path) as f:
        names = list(f.keys())
        if key is None:
            choices = [k for k in ("traces", "data", "y", "emissions") if k in names]
            arrays = [k for k in names if k not in ("labels", "dt", "label_names")]
            if choices:
                key = choices[0]
            elif len(arrays) == 1:
                key = arrays[0]
            else:
                raise ValueError(f"{path.name} holds arrays {names}; name the traces with --key")
        if key not in names:
            raise ValueError(f"{path.name} has no array {key!r}; it holds {names}")
        labels_key = labels_key or ("labels" if "labels" in names else None)
        labels = None if labels_key is None else f[labels_key]
        dt = float(f["dt"]) if "dt" in names else 1.0
        label_names = tuple(str(v) for v in f["label_names"]) if "label_names" in names else ()
        return as_recording(flip(f[key]), dt=dt, labels=labels, name=path.stem, label_names=label_names)


def _read_mat(path, key, labels_key, flip):
    import scipy.io

    try:
        f = scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        if key is None:
            raise ValueError(f"{path.name} is a MATLAB v7.3 (HDF5) file; name the traces with --key") from None
        return read_hdf5(path, key, labels=labels_key, neurons_by_time=flip is not np.asarray)
    arrays = {k: v for k, v in f.items() if not k.startswith("__") and getattr(v, "ndim", 0) == 2
              and min(v.shape) > 1}
    if key is None:
        if len(arrays) != 1:
            raise ValueError(f"{path.name} holds arrays {sorted(arrays)}; name the traces with --key")
        key = next(iter(arrays))
    if key not in f:
        raise ValueError(f"{path.name} has no variable {key!r}; it holds {sorted(arrays)}")
    labels = None if labels_key is None else np.ravel(f[labels_key])
    return as_recording(flip(np.asarray(f[key], dtype=np.float64)), labels=labels, name=path.stem)


def _read_table(path):
    text = path.read_text()
    try:
        return np.loadtxt(path, delimiter="," if "," in text.splitlines()[0] else None, ndmin=2)
    except ValueError as err:
        raise ValueError(f"cannot read {path.name} as a table of numbers ({err}); remove any header "
                         "row") from None
