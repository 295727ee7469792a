"""Preprocessing against direct numpy references."""

import numpy as np
import pytest

from ssmneuro.io import as_recording, bin_spikes, delta_f_over_f, drop_silent_neurons, split_into_trials, zscore


def test_zscore_pools_trials_and_ignores_missing_entries():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, size=(40, 3)), rng.normal(3, 2, size=(25, 3))
    a[4, 1] = np.nan
    with pytest.warns(UserWarning):
        rec = zscore(as_recording([a, b]))
    pooled = np.concatenate([a, b])
    ref = (pooled - np.nanmean(pooled, 0)) / np.nanstd(pooled, 0)
    got = np.concatenate(rec.traces)
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-5, atol=1e-5)
    assert got[4, 1] == 0 and not rec.masks[0][4, 1]


def test_zscore_refuses_constant_neurons_and_drop_removes_them():
    x = np.random.default_rng(1).normal(size=(30, 4))
    x[:, 2] = 5.0
    rec = as_recording(x)
    with pytest.raises(ValueError, match=r"neuron\(s\) \[2\] are constant.*drop_silent_neurons"):
        zscore(rec)
    kept_rec, kept = drop_silent_neurons(rec)
    assert kept.tolist() == [0, 1, 3] and kept_rec.num_neurons == 3
    zscore(kept_rec)


def test_drop_silent_neurons_on_counts_uses_min_count():
    counts = np.zeros((100, 3))
    counts[10, 0] = 1
    counts[::7, 1] = 2
    counts[::3, 2] = 1
    _, kept = drop_silent_neurons(as_recording(counts), min_count=5)
    assert kept.tolist() == [1, 2]


def test_delta_f_over_f_matches_formula():
    rng = np.random.default_rng(2)
    f = rng.uniform(50, 150, size=(200, 3))
    f0 = np.percentile(f, 10, axis=0)
    np.testing.assert_allclose(delta_f_over_f(f), (f - f0) / f0, rtol=1e-5)
    running = delta_f_over_f(f, window=21)
    ref_t = np.percentile(f[90:111], 10, axis=0)
    np.testing.assert_allclose(running[100], (f[100] - ref_t) / ref_t, rtol=1e-5)
    with pytest.raises(ValueError, match="baseline F0 is <= 0"):
        delta_f_over_f(f - 200)


def test_bin_spikes_matches_a_loop():
    rng = np.random.default_rng(3)
    trains = [np.sort(rng.uniform(0, 2.0, size=n)) for n in (30, 0, 7)]
    counts, edges = bin_spikes(trains, 0.1, start=0.0, stop=2.0)
    assert counts.shape == (20, 3) and edges.shape == (21,)
    for n, s in enumerate(trains):
        for t in range(20):
            assert counts[t, n] == np.sum((s >= 0.1 * t) & (s < 0.1 * (t + 1)) | ((t == 19) & (s == 2.0)))
    counts, _ = bin_spikes([np.array([0.0, 1.0])], 0.5)  # default range keeps the last spike
    assert counts.sum() == 2
    with pytest.raises(ValueError, match="bin_size"):
        bin_spikes(trains, 0)


def test_split_into_trials():
    x = np.random.default_rng(4).normal(size=(60, 3))
    rec = split_into_trials(as_recording(x, labels=np.arange(60) % 3), [0, 30], [20, 60])
    assert [t.shape[0] for t in rec.traces] == [20, 30]
    np.testing.assert_allclose(rec.traces[1], x[30:60], rtol=1e-6)
    assert rec.labels[1][0] == 0
    with pytest.raises(ValueError, match="outside"):
        split_into_trials(as_recording(x), [50], [70])
