"""File readers: HDF5 (C. elegans and generic), NWB (ophys, units, trials), pynapple, npy/npz/csv."""

import h5py
import numpy as np
import pytest

from ssmneuro.io import celegans_files, from_pynapple, load_recording, read_celegans, read_hdf5, read_nwb

WORMS = celegans_files()
needs_worms = pytest.mark.skipif(not WORMS, reason="../shared/data/celegans-dag2023 is absent")


@needs_worms
def test_read_celegans_matches_the_raw_file():
    assert len(WORMS) == 5
    rec = read_celegans(WORMS[0])
    with h5py.File(WORMS[0]) as f:
        raw = f["gcamp/trace_array"][:]
        stamps = f["timing/timestamp_confocal"][:]
        rev = f["behavior/reversal_vec"][:]
    np.testing.assert_allclose(rec.traces[0], raw, rtol=1e-6, atol=1e-6)
    assert rec.dt == pytest.approx(np.median(np.diff(stamps)))
    np.testing.assert_array_equal(rec.labels[0], rev)
    assert rec.label_names == ("forward", "reversal") and rec.behavior["velocity"][0].shape == rev.shape
    assert load_recording(WORMS[0]).num_neurons == raw.shape[1]  # dispatch by extension


def test_read_hdf5_generic_and_orientation(tmp_path):
    x = np.random.default_rng(0).normal(size=(80, 5))
    path = tmp_path / "rec.h5"
    with h5py.File(path, "w") as f:
        f["neural/traces"] = x.T  # stored neurons x time
        f["t"] = 0.25 * np.arange(80)
        f["beh"] = np.arange(80) % 2
    rec = read_hdf5(path, "neural/traces", timestamps="t", labels="beh", neurons_by_time=True)
    np.testing.assert_allclose(rec.traces[0], x, rtol=1e-6)
    assert rec.dt == pytest.approx(0.25) and rec.labels[0].sum() == 40
    with pytest.raises(ValueError, match=r"neurons x time"):
        read_hdf5(path, "neural/traces")
    with pytest.raises(ValueError, match="no dataset 'nope'"):
        read_hdf5(path, "nope")
    with pytest.raises(ValueError, match="--key"):
        load_recording(path)


def _nwb_file(path, with_ophys=True, with_units=True, with_trials=True):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import DfOverF, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwb = NWBFile(session_description="test", identifier="t", session_start_time=datetime.now(timezone.utc))
    rng = np.random.default_rng(0)
    traces = rng.normal(size=(100, 6))
    trains = [np.sort(rng.uniform(0, 10, size=n)) for n in (40, 12, 25)]
    if with_ophys:
        device = nwb.create_device(name="scope")
        channel = OpticalChannel(name="green", description="g", emission_lambda=520.0)
        plane = nwb.create_imaging_plane(name="plane", optical_channel=channel, description="p",
                                         device=device, excitation_lambda=920.0, imaging_rate=10.0,
                                         indicator="GCaMP6s", location="VMHvl")
        seg = ImageSegmentation()
        ps = seg.create_plane_segmentation(description="rois", imaging_plane=plane, name="ps")
        for _ in range(6):
            ps.add_roi(image_mask=np.zeros((4, 4)))
        module = nwb.create_processing_module(name="ophys", description="o")
        module.add(seg)
        rois = ps.create_roi_table_region(region=list(range(6)), description="all")
        series = RoiResponseSeries(name="dff", data=traces, rois=rois, unit="1", rate=10.0)
        module.add(DfOverF(roi_response_series=series))
    if with_units:
        for s in trains:
            nwb.add_unit(spike_times=s)
    if with_trials:
        nwb.add_trial(start_time=0.0, stop_time=4.0)
        nwb.add_trial(start_time=5.0, stop_time=10.0)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return traces, trains


def test_read_nwb_ophys_with_trials(tmp_path):
    path = tmp_path / "s.nwb"
    traces, _ = _nwb_file(path)
    rec = read_nwb(path)
    assert rec.dt == pytest.approx(0.1) and rec.num_trials == 2
    np.testing.assert_allclose(rec.traces[0], traces[:40], rtol=1e-6)  # t in [0, 4)
    np.testing.assert_allclose(rec.traces[1], traces[50:100], rtol=1e-6)  # t in [5, 10)
    whole = read_nwb(path, use_trials=False)
    np.testing.assert_allclose(whole.traces[0], traces, rtol=1e-6)
    with pytest.raises(ValueError, match="no RoiResponseSeries 'x'"):
        read_nwb(path, series="x")


def test_read_nwb_units_are_binned(tmp_path):
    path = tmp_path / "u.nwb"
    _, trains = _nwb_file(path, with_ophys=False)
    rec = read_nwb(path, bin_size=0.5, use_trials=False)
    counts = rec.traces[0]
    assert rec.dt == pytest.approx(0.5) and counts.shape == (20, 3)
    for n, s in enumerate(trains):
        ref = [np.sum((s >= 0.5 * t) & (s < 0.5 * (t + 1))) for t in range(20)]
        ref[-1] += np.sum(s == 10.0)
        np.testing.assert_array_equal(counts[:, n], ref)
    assert read_nwb(path, bin_size=0.5).num_trials == 2
    empty = tmp_path / "e.nwb"
    _nwb_file(empty, with_ophys=False, with_units=False, with_trials=False)
    with pytest.raises(ValueError, match="neither ophys traces nor a units table"):
        read_nwb(empty)


def test_pynapple_tsdframe_and_tsgroup():
    import pynapple as nap

    rng = np.random.default_rng(1)
    t = 0.05 * np.arange(200)
    x = rng.normal(size=(200, 4))
    rec = from_pynapple(nap.TsdFrame(t=t, d=x))
    np.testing.assert_allclose(rec.traces[0], x, rtol=1e-6)
    assert rec.dt == pytest.approx(0.05)
    epochs = nap.IntervalSet(start=[0.0, 5.0], end=[2.0, 9.0])
    assert from_pynapple(nap.TsdFrame(t=t, d=x), epochs=epochs).num_trials == 2
    trains = {i: nap.Ts(t=np.sort(rng.uniform(0, 10, size=50))) for i in range(3)}
    group = nap.TsGroup(trains, time_support=nap.IntervalSet(0, 10))
    counts = from_pynapple(group, bin_size=0.5).traces[0]
    assert counts.shape[1] == 3 and counts.sum() == 150
    ref0 = np.histogram(trains[0].t, bins=np.arange(0, 10.01, 0.5))[0]
    np.testing.assert_array_equal(counts[:, 0], ref0)
    with pytest.raises(ValueError, match="bin_size"):
        from_pynapple(group)
    with pytest.raises(ValueError, match="TsdFrame"):
        from_pynapple(x)


def test_load_recording_npy_npz_csv(tmp_path):
    x = np.random.default_rng(2).normal(size=(30, 3))
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", traces=x, labels=np.arange(30) % 2, dt=0.2)
    np.savetxt(tmp_path / "c.csv", x, delimiter=",")
    for name in ("a.npy", "b.npz", "c.csv"):
        np.testing.assert_allclose(load_recording(tmp_path / name).traces[0], x, rtol=1e-5)
    rec = load_recording(tmp_path / "b.npz")
    assert rec.dt == pytest.approx(0.2) and rec.labels is not None
    assert load_recording(tmp_path / "a.npy", dt=0.3).dt == pytest.approx(0.3)
    with pytest.raises(FileNotFoundError):
        load_recording(tmp_path / "missing.npy")
    (tmp_path / "d.xyz").write_text("1")
    with pytest.raises(ValueError, match="unknown file type"):
        load_recording(tmp_path / "d.xyz")


def test_load_recording_mat_and_neurons_by_time(tmp_path):
    import scipy.io

    x = np.random.default_rng(3).normal(size=(40, 5))
    scipy.io.savemat(tmp_path / "r.mat", {"NEURAL": x.T, "beh": np.arange(40) % 2})
    with pytest.raises(ValueError, match="neurons x time.*--neurons-by-time"):
        load_recording(tmp_path / "r.mat", key="NEURAL")
    rec = load_recording(tmp_path / "r.mat", key="NEURAL", labels_key="beh", neurons_by_time=True)
    np.testing.assert_allclose(rec.traces[0], x, rtol=1e-6)
    assert rec.labels[0].sum() == 20
    np.save(tmp_path / "t.npy", x.T)
    np.testing.assert_allclose(load_recording(tmp_path / "t.npy", neurons_by_time=True).traces[0], x, rtol=1e-6)
    scipy.io.savemat(tmp_path / "two.mat", {"a": x, "b": x})
    with pytest.raises(ValueError, match="name the traces with --key"):
        load_recording(tmp_path / "two.mat")
