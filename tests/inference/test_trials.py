"""Ragged trials: validation, padding round trips, optimal bucketing, and padded steps contributing nothing."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.block_tridiag import block_tridiag_posterior
from ssmneuro.inference.hmm import hmm_smoother
from ssmneuro.inference.trials import as_trials, bucket_trials, map_trials, pad_trials, unpad, valid_mask


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_as_trials_accepts_array_list_and_batch():
    x = np.arange(12.0).reshape(6, 2)
    assert [t.shape for t in as_trials(x)] == [(6, 2)]
    assert [t.shape for t in as_trials([x, x[:3]])] == [(6, 2), (3, 2)]
    assert [t.shape for t in as_trials(np.stack([x, x]))] == [(6, 2), (6, 2)]
    assert as_trials([x.astype(int)])[0].dtype == np.float32
    assert as_trials([x])[0].dtype == np.float64


@pytest.mark.parametrize("bad, message", [
    ([np.zeros((5, 2)), np.zeros((5, 3))], "trial 1 has 3 channels"),
    ([np.zeros((5, 2)), np.zeros(5)], "trial 1 must be 2-D"),
    ([np.zeros((5, 2)), np.zeros((1, 2))], "trial 1 has 1 time steps"),
    ([np.zeros((5, 2)), np.zeros((4, 2)), np.full((4, 2), np.nan)], "trial 2 contains NaN"),
    ([np.zeros((5, 2)), np.r_[[[0.0, np.inf]], np.zeros((3, 2))]], "trial 1 contains NaN or inf \\(first at time 0, channel 1\\)"),
    (np.zeros(5), "single channel"),
    ([], "empty"),
])
def test_as_trials_names_the_bad_trial(bad, message):
    with pytest.raises(ValueError, match=message):
        as_trials(bad)


def test_pad_unpad_round_trip_and_mask():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(n, 3, 2)) for n in (4, 7, 5)]
    padded, lengths = pad_trials(arrays, fill=-1.0)
    assert padded.shape == (3, 7, 3, 2) and lengths.tolist() == [4, 7, 5]
    assert np.all(padded[0, 4:] == -1.0)
    for a, b in zip(unpad(padded, lengths), arrays):
        np.testing.assert_array_equal(a, b)
    mask = valid_mask(lengths, 7)
    np.testing.assert_array_equal(mask.sum(1), lengths)
    assert bool(mask[0, 3]) and not bool(mask[0, 4])
    assert pad_trials(arrays, length=9)[0].shape[1] == 9
    with pytest.raises(ValueError, match="trial 1 has 7 steps"):
        pad_trials(arrays, length=6)
    with pytest.raises(ValueError, match="trial 2 has shape"):
        pad_trials([np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 4))])


def _best_cost_by_brute_force(lengths, max_buckets):
    values = np.unique(lengths)
    best = np.inf
    for g in range(1, min(max_buckets, len(values)) + 1):
        for cuts in itertools.combinations(range(1, len(values)), g - 1):
            edges = (0,) + cuts + (len(values),)
            cost = sum(values[b - 1] * np.sum((lengths >= values[a]) & (lengths <= values[b - 1]))
                       for a, b in zip(edges[:-1], edges[1:]))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("max_buckets", [1, 2, 3])
def test_bucket_trials_is_optimal_and_covers_every_trial(seed, max_buckets):
    lengths = np.random.default_rng(seed).integers(2, 40, size=13)
    buckets = bucket_trials(lengths, max_buckets=max_buckets)
    assert len(buckets) <= max_buckets
    members = np.concatenate([m for m, _ in buckets])
    np.testing.assert_array_equal(np.sort(members), np.arange(13))
    assert all(np.all(lengths[m] <= L) and L == lengths[m].max() for m, L in buckets)
    cost = sum(L * len(m) for m, L in buckets)
    assert cost == _best_cost_by_brute_force(lengths, max_buckets)


def _random_hmm(rng, T, K):
    return (np.log(rng.dirichlet(np.ones(K))), np.log(rng.dirichlet(np.ones(K), size=K)),
            rng.normal(scale=2.0, size=(T, K)))


@pytest.mark.parametrize("parallel", [False, True])
def test_hmm_padded_rows_contribute_nothing(parallel):
    rng = np.random.default_rng(1)
    log_pi, log_A, log_lik = _random_hmm(rng, 7, 3)
    ref = hmm_smoother(log_pi, log_A, log_lik, parallel=parallel)
    padded = np.concatenate([log_lik, np.zeros((5, 3))])
    out = hmm_smoother(log_pi, log_A, padded, parallel=parallel)
    np.testing.assert_allclose(out.log_likelihood, ref.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(out.smoothed_probs[:7], ref.smoothed_probs, atol=1e-12)
    np.testing.assert_allclose(out.filtered_probs[:7], ref.filtered_probs, atol=1e-12)
    # without `length`, padded transitions are counted; with it they are not
    assert not np.allclose(out.expected_transitions, ref.expected_transitions)
    garbage = np.concatenate([log_lik, rng.normal(size=(5, 3))])  # padded rows are ignored whatever they hold
    out = hmm_smoother(log_pi, log_A, garbage, parallel=parallel, length=7)
    np.testing.assert_allclose(out.log_likelihood, ref.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(out.smoothed_probs[:7], ref.smoothed_probs, atol=1e-12)
    np.testing.assert_allclose(out.expected_transitions, ref.expected_transitions, atol=1e-12)
    # time-varying transitions: padded pairs are zero
    log_A_tv = np.log(rng.dirichlet(np.ones(3), size=(11, 3)))
    ref_tv = hmm_smoother(log_pi, log_A_tv[:6], log_lik, parallel=parallel)
    out_tv = hmm_smoother(log_pi, log_A_tv, garbage, parallel=parallel, length=7)
    np.testing.assert_allclose(out_tv.expected_transitions[:6], ref_tv.expected_transitions, atol=1e-12)
    assert np.all(np.asarray(out_tv.expected_transitions[6:]) == 0.0)


def test_vmap_over_padded_trials_equals_per_trial():
    rng = np.random.default_rng(2)
    log_pi, log_A, _ = _random_hmm(rng, 2, 3)
    trials = [rng.normal(scale=2.0, size=(n, 3)) for n in (5, 9, 6, 9, 3)]

    def per_trial(log_lik, length):
        post = hmm_smoother(log_pi, log_A, log_lik, length=length)
        return post.log_likelihood, post.smoothed_probs, post.expected_transitions

    outputs = map_trials(per_trial, trials, max_buckets=2)
    for log_lik, (ll, smoothed, transitions) in zip(trials, outputs):
        ref = hmm_smoother(log_pi, log_A, log_lik)
        np.testing.assert_allclose(ll, ref.log_likelihood, rtol=1e-12)
        np.testing.assert_allclose(smoothed[: len(log_lik)], ref.smoothed_probs, atol=1e-12)
        np.testing.assert_allclose(transitions, ref.expected_transitions, atol=1e-12)


def test_block_tridiag_padding_rule():
    """Padded blocks J = I, J_lower = 0, h = 0: valid moments and log det unchanged, + D/2 log 2π each."""
    rng = np.random.default_rng(3)
    T, D, pad = 5, 2, 3
    M = rng.normal(size=(T, D, D))
    J_diag = M @ np.swapaxes(M, -1, -2) + 3 * np.eye(D)
    J_lower = 0.5 * rng.normal(size=(T - 1, D, D))
    h = rng.normal(size=(T, D))
    ref = block_tridiag_posterior(J_diag, J_lower, h)
    out = block_tridiag_posterior(np.concatenate([J_diag, np.broadcast_to(np.eye(D), (pad, D, D))]),
                                  np.concatenate([J_lower, np.zeros((pad, D, D))]),
                                  np.concatenate([h, np.zeros((pad, D))]))
    np.testing.assert_allclose(out.means[:T], ref.means, atol=1e-12)
    np.testing.assert_allclose(out.covs[:T], ref.covs, atol=1e-12)
    np.testing.assert_allclose(out.log_det_precision, ref.log_det_precision, atol=1e-12)
    np.testing.assert_allclose(out.log_normalizer, ref.log_normalizer + pad * D / 2 * np.log(2 * np.pi), atol=1e-10)
