"""Data in: arrays, HDF5, NWB, pynapple; preprocessing; the demo's simulated recording.

Every reader returns a validated :class:`Recording` (time-first traces, masks for missing values,
frame interval, optional behaviour labels). ``ssmneuro.io`` imports nothing else of the package.
"""

from ssmneuro.io.hdf5 import celegans_files, read_celegans, read_hdf5, shared_data_dir
from ssmneuro.io.load import load_recording
from ssmneuro.io.nwb import read_nwb
from ssmneuro.io.preprocess import (
    bin_spikes,
    delta_f_over_f,
    drop_silent_neurons,
    split_into_trials,
    zscore,
)
from ssmneuro.io.pynapple_io import from_pynapple
from ssmneuro.io.recording import Recording, as_recording
from ssmneuro.io.simulate import HypothalamusSimulation, simulate_hypothalamus

__all__ = [
    "Recording", "as_recording", "load_recording", "read_celegans", "read_hdf5", "read_nwb",
    "from_pynapple", "celegans_files", "shared_data_dir", "zscore", "delta_f_over_f", "bin_spikes",
    "drop_silent_neurons", "split_into_trials", "simulate_hypothalamus", "HypothalamusSimulation",
]
