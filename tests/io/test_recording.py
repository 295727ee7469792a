"""Validation of recordings: every bad input gets a ValueError that names the problem and the fix."""

import warnings

import numpy as np
import pytest

from ssmneuro.io import as_recording


def _data(T=50, N=4, seed=0):
    return np.random.default_rng(seed).normal(size=(T, N))


def test_valid_array_round_trips_in_float32():
    x = _data()
    rec = as_recording(x, dt=0.5, labels=np.arange(50) % 2)
    assert rec.num_trials == 1 and rec.num_neurons == 4 and rec.num_frames == 50
    assert rec.masks is None and rec.traces[0].dtype == np.float32
    np.testing.assert_allclose(rec.traces[0], x, rtol=1e-6)
    assert rec.labels[0].dtype == np.int32 and rec.dt == 0.5


def test_three_d_array_and_list_become_trials():
    x = np.random.default_rng(1).normal(size=(3, 20, 4))
    assert as_recording(x).num_trials == 3
    rec = as_recording([x[0], x[1][:7]])
    assert [t.shape[0] for t in rec.traces] == [20, 7]


def test_nan_frames_become_masks_with_a_warning():
    x = _data()
    x[5] = np.nan
    x[9, 2] = np.nan
    with pytest.warns(UserWarning, match="5 NaN value"):
        rec = as_recording(x)
    m = rec.masks[0]
    assert (~m).sum() == 5 and not m[5].any() and not m[9, 2] and m[9, 1]
    assert np.all(rec.traces[0][~m] == 0)  # masked entries hold 0, never NaN
    assert np.isfinite(rec.traces[0]).all()


def test_nan_combined_with_given_masks():
    x = _data()
    x[3, 1] = np.nan
    given = np.ones_like(x, bool)
    given[4, 0] = False
    with pytest.warns(UserWarning, match="1 NaN"):
        rec = as_recording(x, masks=given)
    assert (~rec.masks[0]).sum() == 2


def test_neurons_by_time_is_detected_and_explained():
    with pytest.raises(ValueError, match=r"neurons x time.*pass data\.T"):
        as_recording(_data(T=100, N=8).T)
    as_recording(_data(T=5, N=8), allow_fewer_frames_than_neurons=True)  # explicit opt-out works


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 4)), "empty"),
    (np.ones((30, 3)), "constant"),
    (np.arange(10.0), "1-D"),
    (np.zeros((2, 3, 4, 5)), "shape"),
    ([], "empty list"),
    (np.array([["a", "b"]] * 5), "numeric"),
])
def test_bad_arrays_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        as_recording(bad)


def test_inf_all_nan_neuron_and_mismatched_trials_are_refused():
    x = _data()
    x[7, 1] = np.inf
    with pytest.raises(ValueError, match="inf.*frame 7, neuron 1"):
        as_recording(x)
    x = _data()
    x[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"neuron\(s\) \[2\] are NaN in every frame"):
        as_recording(x)
    with pytest.raises(ValueError, match="trial 1 has 3 neurons"):
        as_recording([_data(N=4), _data(N=3)])


def test_bad_dt_and_labels_are_refused():
    with pytest.raises(ValueError, match="dt"):
        as_recording(_data(), dt=0)
    with pytest.raises(ValueError, match="labels of trial 0 have shape"):
        as_recording(_data(), labels=np.zeros(10))
    with pytest.raises(ValueError, match="not integers"):
        as_recording(_data(), labels=np.full(50, 0.5))


def test_no_warning_for_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_recording(_data())
