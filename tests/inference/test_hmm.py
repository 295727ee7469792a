"""HMM filter / smoother / sampler / Viterbi against brute-force enumeration of all K^T paths (float64)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from ssmneuro.inference.hmm import hmm_filter, hmm_posterior_sample, hmm_smoother, hmm_viterbi


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def random_hmm(rng, T, K, time_varying, scale=2.0):
    log_pi = np.log(rng.dirichlet(np.ones(K)))
    shape = (T - 1, K, K) if time_varying else (K, K)
    log_A = np.log(rng.dirichlet(np.ones(K), size=shape[:-1]))
    log_lik = rng.normal(scale=scale, size=(T, K))
    return log_pi, log_A, log_lik


def left_to_right_hmm(rng, T, K):
    """Structural zeros: z can only stay or move up by one (log A = -inf elsewhere), starts in 0 or 1."""
    pi = np.r_[0.6, 0.4, np.zeros(K - 2)]
    A = np.zeros((K, K))
    for i in range(K):
        A[i, i] = 0.7 if i + 1 < K else 1.0
        if i + 1 < K:
            A[i, i + 1] = 0.3
    with np.errstate(divide="ignore"):
        return np.log(pi), np.log(A), rng.normal(scale=2.0, size=(T, K))


def enumerate_paths(log_pi, log_A, log_lik):
    """Joint log p(z, y) of every path: (K^T, T) paths and (K^T,) log-probabilities."""
    T, K = log_lik.shape
    A = np.broadcast_to(log_A, (T - 1, K, K))
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    log_p = log_pi[paths[:, 0]] + log_lik[np.arange(T), paths].sum(-1)
    for t in range(T - 1):
        log_p = log_p + A[t, paths[:, t], paths[:, t + 1]]
    return paths, log_p


def brute_force(log_pi, log_A, log_lik):
    T, K = log_lik.shape
    paths, log_p = enumerate_paths(log_pi, log_A, log_lik)
    log_Z = logsumexp(log_p)
    w = np.exp(log_p - log_Z)
    smoothed = np.stack([np.bincount(paths[:, t], weights=w, minlength=K) for t in range(T)])
    pairs = np.zeros((T - 1, K, K))
    for t in range(T - 1):
        np.add.at(pairs[t], (paths[:, t], paths[:, t + 1]), w)
    filtered, predicted = [], []
    for t in range(T):
        sub_paths, sub_log_p = enumerate_paths(log_pi, np.broadcast_to(log_A, (T - 1, K, K))[:t], log_lik[: t + 1])
        sub_w = np.exp(sub_log_p - logsumexp(sub_log_p))
        filtered.append(np.bincount(sub_paths[:, t], weights=sub_w, minlength=K))
        if t == 0:
            predicted.append(np.exp(log_pi))
        else:
            prev_paths, prev_log_p = enumerate_paths(log_pi, np.broadcast_to(log_A, (T - 1, K, K))[: t - 1], log_lik[:t])
            prev_w = np.exp(prev_log_p - logsumexp(prev_log_p))
            prev_filtered = np.bincount(prev_paths[:, t - 1], weights=prev_w, minlength=K)
            predicted.append(prev_filtered @ np.exp(np.broadcast_to(log_A, (T - 1, K, K))[t - 1]))
    return dict(log_Z=log_Z, smoothed=smoothed, pairs=pairs, filtered=np.stack(filtered),
                predicted=np.stack(predicted), viterbi=paths[np.argmax(log_p)], paths=paths, weights=w)


@pytest.fixture(scope="module", params=["static", "time_varying", "left_to_right"])
def case(request):
    rng = np.random.default_rng(["static", "time_varying", "left_to_right"].index(request.param))
    if request.param == "left_to_right":
        hmm = left_to_right_hmm(rng, 6, 3)
    else:
        hmm = random_hmm(rng, 6, 3, request.param == "time_varying")
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = brute_force(*hmm)
    return hmm, ref, request.param == "time_varying"


@pytest.mark.parametrize("parallel", [False, True])
def test_filter_equals_enumeration(case, parallel):
    hmm, ref, _ = case
    out = hmm_filter(*hmm, parallel=parallel)
    np.testing.assert_allclose(out.log_likelihood, ref["log_Z"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.filtered_probs, ref["filtered"], atol=1e-10)
    np.testing.assert_allclose(out.predicted_probs, ref["predicted"], atol=1e-10)


@pytest.mark.parametrize("parallel", [False, True])
def test_smoother_equals_enumeration(case, parallel):
    hmm, ref, tv = case
    out = hmm_smoother(*hmm, parallel=parallel)
    np.testing.assert_allclose(out.log_likelihood, ref["log_Z"], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.filtered_probs, ref["filtered"], atol=1e-10)
    np.testing.assert_allclose(out.smoothed_probs, ref["smoothed"], atol=1e-10)
    expected = ref["pairs"] if tv else ref["pairs"].sum(0)
    assert out.expected_transitions.shape == expected.shape
    np.testing.assert_allclose(out.expected_transitions, expected, atol=1e-10)


@pytest.mark.parametrize("parallel", [False, True])
def test_viterbi_equals_enumeration(case, parallel):
    hmm, ref, _ = case
    np.testing.assert_array_equal(hmm_viterbi(*hmm, parallel=parallel), ref["viterbi"])


@pytest.mark.parametrize("parallel", [False, True])
def test_sample_path_frequencies_match_enumeration(case, parallel):
    hmm, ref, _ = case
    S = 20_000
    samples = np.asarray(hmm_posterior_sample(jax.random.PRNGKey(3), *hmm, parallel=parallel, num_samples=S))
    assert samples.shape == (S, 6)
    K = 3
    # frequencies of whole paths (K^T = 729 cells) and of single-time marginals, within 5 standard errors
    codes = samples @ (K ** np.arange(5, -1, -1))
    freq = np.bincount(codes, minlength=K**6) / S
    p = ref["weights"]  # enumeration order matches the base-K code of the path
    assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / S) + 2.0 / S)
    marg = np.stack([np.bincount(samples[:, t], minlength=K) / S for t in range(6)])
    assert np.all(np.abs(marg - ref["smoothed"]) <= 5 * np.sqrt(ref["smoothed"] * (1 - ref["smoothed"]) / S) + 1e-12)


@pytest.mark.parametrize("schedule", ["tree", "blocked"])
@pytest.mark.parametrize("time_varying", [False, True])
def test_parallel_equals_sequential(time_varying, schedule):
    """Both schedules of the associative scans (``parallel=True`` is one of them, by device)."""
    rng = np.random.default_rng(10 + time_varying)
    hmm = random_hmm(rng, 100, 4, time_varying)
    seq, par = hmm_smoother(*hmm, parallel=False), hmm_smoother(*hmm, parallel=schedule)
    for a, b in zip(seq, par):
        np.testing.assert_allclose(a, b, atol=1e-8, rtol=1e-8)
    np.testing.assert_array_equal(hmm_viterbi(*hmm, parallel=False), hmm_viterbi(*hmm, parallel=schedule))
    key = jax.random.PRNGKey(5)
    samples = [hmm_posterior_sample(key, *hmm, parallel=p, num_samples=3) for p in ("tree", "blocked")]
    np.testing.assert_array_equal(samples[0], samples[1])


@pytest.mark.parametrize("parallel", [False, True])
def test_log_likelihood_gradient(parallel):
    """grad log p(y) matches central finite differences, and equals the smoothed marginals (d/d log l_t)
    and the expected transition counts (d/d log A) — the Fisher identities."""
    rng = np.random.default_rng(12)
    log_pi, log_A, log_lik = random_hmm(rng, 8, 3, False)

    def f(lp, la, ll):
        return hmm_filter(lp, la, ll, parallel=parallel).log_likelihood

    grads = jax.grad(f, argnums=(0, 1, 2))(log_pi, log_A, log_lik)
    directions = [rng.normal(size=x.shape) for x in (log_pi, log_A, log_lik)]
    eps = 1e-6
    plus = f(*[x + eps * d for x, d in zip((log_pi, log_A, log_lik), directions)])
    minus = f(*[x - eps * d for x, d in zip((log_pi, log_A, log_lik), directions)])
    np.testing.assert_allclose(sum(np.sum(g * d) for g, d in zip(grads, directions)),
                               (plus - minus) / (2 * eps), rtol=1e-7, atol=1e-9)
    post = hmm_smoother(log_pi, log_A, log_lik, parallel=parallel)
    np.testing.assert_allclose(grads[2], post.smoothed_probs, atol=1e-10)
    np.testing.assert_allclose(grads[1], post.expected_transitions, atol=1e-10)
    np.testing.assert_allclose(grads[0], post.smoothed_probs[0], atol=1e-10)


def test_float32_sharp_likelihoods_parallel_matches_sequential():
    """Log-likelihood gaps of hundreds of nats per step (many neurons): no underflow, no NaN."""
    rng = np.random.default_rng(13)
    T, K = 1000, 5
    log_pi, log_A, _ = random_hmm(rng, T, K, False)
    z = np.repeat(rng.integers(K, size=T // 50), 50)
    log_lik = -200.0 * rng.uniform(size=(T, K))
    log_lik[np.arange(T), z] = 0.0
    ref = hmm_smoother(log_pi, log_A, log_lik)
    ref_path = hmm_viterbi(log_pi, log_A, log_lik)
    assert np.mean(np.asarray(ref_path) == z) > 0.95  # the MAP path is the simulated one up to a few switch times
    with jax.enable_x64(False):
        args = [np.asarray(x, np.float32) for x in (log_pi, log_A, log_lik)]
        for parallel in (False, True):
            out = hmm_smoother(*args, parallel=parallel)
            assert all(bool(jnp.all(jnp.isfinite(x))) for x in out)
            np.testing.assert_allclose(out.log_likelihood, ref.log_likelihood, rtol=1e-5)
            np.testing.assert_allclose(out.smoothed_probs, ref.smoothed_probs, atol=1e-4)
            np.testing.assert_allclose(out.expected_transitions, ref.expected_transitions, rtol=1e-3, atol=1e-2)
            np.testing.assert_array_equal(hmm_viterbi(*args, parallel=parallel), ref_path)


def test_single_time_step():
    rng = np.random.default_rng(14)
    log_pi, log_A, log_lik = random_hmm(rng, 1, 3, False)
    for parallel in (False, True):
        post = hmm_smoother(log_pi, log_A, log_lik, parallel=parallel)
        np.testing.assert_allclose(post.log_likelihood, logsumexp(log_pi + log_lik[0]), rtol=1e-12)
        np.testing.assert_allclose(post.smoothed_probs[0], np.exp(log_pi + log_lik[0] - logsumexp(log_pi + log_lik[0])))
        np.testing.assert_allclose(post.expected_transitions, np.zeros((3, 3)))
        assert hmm_viterbi(log_pi, log_A, log_lik, parallel=parallel).shape == (1,)
        assert hmm_posterior_sample(jax.random.PRNGKey(0), log_pi, log_A, log_lik, parallel=parallel).shape == (1,)


def test_bad_input_raises():
    rng = np.random.default_rng(15)
    log_pi, log_A, log_lik = random_hmm(rng, 5, 3, False)
    with pytest.raises(ValueError, match="log_initial_probs"):
        hmm_filter(log_pi[:2], log_A, log_lik)
    with pytest.raises(ValueError, match="log_transition_matrix"):
        hmm_filter(log_pi, np.stack([log_A] * 2), log_lik)
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        hmm_filter(log_pi, log_A, log_lik[0])
    bad = log_lik.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="log_likelihoods contains NaN"):
        hmm_smoother(log_pi, log_A, bad)
    with pytest.raises(ValueError, match="length"):
        hmm_filter(log_pi, log_A, log_lik, length=2.5)
    # a (T, K, K) stack is accepted, its last entry ignored
    stack = np.stack([log_A] * 5)
    np.testing.assert_allclose(hmm_filter(log_pi, stack, log_lik).log_likelihood,
                               hmm_filter(log_pi, log_A, log_lik).log_likelihood, rtol=1e-12)


def _sticky_chain(rng, T, K):
    A = 0.95 * np.eye(K) + 0.05 * rng.dirichlet(np.ones(K) * 0.1, size=K)
    z = np.repeat(rng.integers(K, size=T // 100 + 1), 100)[:T]
    log_lik = -30.0 * rng.uniform(size=(T, K))
    log_lik[np.arange(T), z] = 0.0
    return [np.asarray(x, np.float32) for x in (np.full(K, -np.log(K)), np.log(A), log_lik)]


def test_stable_at_T10000_K100_float32():
    """Sequential at T = 10,000, K = 100; parallel at T = 128, K = 100 (the parallel O(T K^3) work at
    T = 10,000, K = 100 takes ~15 s on this CPU: see the issue note; long parallel chains in float32 are
    covered by the sharp-likelihood test above)."""
    rng = np.random.default_rng(16)
    with jax.enable_x64(False):
        args = _sticky_chain(rng, 10_000, 100)
        post = hmm_smoother(*args)
        assert np.isfinite(post.log_likelihood)
        for probs in (post.filtered_probs, post.smoothed_probs):
            assert bool(jnp.all(jnp.isfinite(probs)))
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(post.expected_transitions.sum(), 10_000 - 1, rtol=1e-4)
        path = hmm_viterbi(*args)
        assert np.mean(np.asarray(path) == np.argmax(args[2], axis=1)) > 0.99
        sample = hmm_posterior_sample(jax.random.PRNGKey(0), *args)
        assert sample.shape == (10_000,) and int(sample.min()) >= 0 and int(sample.max()) < 100

        for T, K in ((128, 100),):
            args = _sticky_chain(rng, T, K)
            seq, par = hmm_smoother(*args), hmm_smoother(*args, parallel=True)
            np.testing.assert_allclose(par.log_likelihood, seq.log_likelihood, rtol=1e-5)
            np.testing.assert_allclose(par.smoothed_probs, seq.smoothed_probs, atol=1e-4)
            np.testing.assert_allclose(par.smoothed_probs.sum(-1), 1.0, atol=1e-5)
            np.testing.assert_array_equal(hmm_viterbi(*args, parallel=True), hmm_viterbi(*args))
            sample = hmm_posterior_sample(jax.random.PRNGKey(1), *args, parallel=True)
            assert sample.shape == (T,) and int(sample.max()) < K


@pytest.mark.parametrize("time_varying", [False, True])
def test_agrees_with_dynamax_hmm_smoother(time_varying):
    dynamax_inference = pytest.importorskip("dynamax.hidden_markov_model.inference")
    rng = np.random.default_rng(17)
    log_pi, log_A, log_lik = random_hmm(rng, 40, 4, time_varying)
    ref = dynamax_inference.hmm_smoother(np.exp(log_pi), np.exp(log_A), log_lik)
    out = hmm_smoother(log_pi, log_A, log_lik)
    np.testing.assert_allclose(out.log_likelihood, ref.marginal_loglik, rtol=1e-10)
    np.testing.assert_allclose(out.smoothed_probs, ref.smoothed_probs, atol=1e-10)
    np.testing.assert_allclose(out.filtered_probs, ref.filtered_probs, atol=1e-10)
    np.testing.assert_allclose(out.expected_transitions, ref.trans_probs, atol=1e-10)


@pytest.mark.parametrize("parallel", [False, True])
def test_float32_exact_beyond_the_float_range(parallel):
    """A switch the transition matrix puts at e^-150 (below float32's smallest normal, e^-87) that 3 steps of
    100-nat evidence overturn: log p(y) = log(1/2) - 150 in float32 too. Scaled-probability recursions
    (dynamax's kind) round e^-150 to zero or to a floor, and miss this by tens of nats; the log-space ones do not."""
    T = 6
    log_A = np.array([[0.0, -150.0], [-150.0, 0.0]])
    log_pi = np.log([0.5, 0.5])
    log_lik = np.zeros((T, 2))
    log_lik[:3, 1] = -500.0
    log_lik[3:, 0] = -100.0
    with jax.enable_x64(False):
        out = hmm_smoother(*[np.asarray(x, np.float32) for x in (log_pi, log_A, log_lik)], parallel=parallel)
    np.testing.assert_allclose(out.log_likelihood, np.log(0.5) - 150.0, rtol=1e-6)
    np.testing.assert_allclose(out.smoothed_probs[:, 1], [0, 0, 0, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(out.expected_transitions, [[2, 1], [0, 2]], atol=1e-5)
