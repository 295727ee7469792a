"""Line-attractor score and its distribution on simulations with a known answer (float64).

Line attractor: eigenvalues (0.999, 0.9, 0.85), dt = 0.1 s -> tau = (99.95, 0.949, 0.616) s, score 6.72.
Point-attractor control: eigenvalues (0.9, 0.88, 0.85) -> score 0.28.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.analysis.dynamics_posterior import (latent_stats, posterior_params, posterior_stats,
                                                  sample_dynamics, sample_inverse_wishart, trial_stats)
from ssmneuro.analysis.linear import line_attractor_score_from_eigenvalues, time_constants
from ssmneuro.analysis.score import match_states, summarize_scores
from ssmneuro.analysis.toy_systems import SwitchingLinear, line_attractor_dynamics, simulate_switching

DT = 0.1
TRUE_SCORE = float(np.log2(np.log(0.9) / np.log(0.999)))
N, D, TRIALS, T = 30, 3, 20, 100


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _system(slow=0.999, fast=(0.9, 0.85)):
    A, V, _ = line_attractor_dynamics(jax.random.PRNGKey(100), D, slow, fast)
    return A, SwitchingLinear(A[None], np.zeros((1, D)), np.zeros((1, D)), np.zeros(1))


def _simulate(seed, system):
    with jax.enable_x64(True):
        C = np.asarray(jax.random.normal(jax.random.PRNGKey(101), (N, D)))
        _, x, y = simulate_switching(jax.random.PRNGKey(seed), system, C, np.zeros(N), T, 0.1, 0.5, num_trials=TRIALS)
    return C, x, y


def test_time_constants_and_score_conventions():
    tau = time_constants(np.array([0.9, 0.999]), dt=DT)
    np.testing.assert_allclose(tau, [-DT / np.log(0.999), -DT / np.log(0.9)], rtol=1e-12)
    np.testing.assert_allclose(tau, [99.95, 0.949], rtol=1e-3)
    assert abs(TRUE_SCORE - 6.72) < 0.01
    np.testing.assert_allclose(line_attractor_score_from_eigenvalues(np.array([0.999, 0.9, 0.85]), DT), TRUE_SCORE)
    # continuous time: tau = -1 / Re(mu), seconds
    np.testing.assert_allclose(time_constants(np.array([-1.0 + 2j, -0.01]), time="continuous"), [100.0, 1.0])
    np.testing.assert_allclose(line_attractor_score_from_eigenvalues(np.array([-0.01, -1.0]), time="continuous"),
                               np.log2(100))
    with pytest.raises(ValueError, match="dt"):
        time_constants(np.array([0.9, 0.5]))


def test_posterior_mean_is_weighted_least_squares():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    probs = rng.dirichlet(np.ones(2), size=200)
    stats = trial_stats(x, state_probs=probs)
    M, *_ = posterior_params(stats, prior_precision=1e-10)
    phi = np.concatenate([x[:-1], np.ones((199, 1))], 1)
    for k in range(2):
        w = np.sqrt(probs[1:, k])[:, None]
        ref = np.linalg.lstsq(phi * w, x[1:] * w, rcond=None)[0].T
        np.testing.assert_allclose(M[k], ref, atol=1e-8)


def test_inverse_wishart_and_matrix_normal_moments():
    scale = np.array([[2.0, 0.3], [0.3, 1.0]])
    S = np.asarray(sample_inverse_wishart(jax.random.PRNGKey(0), 10.0, jnp.asarray(scale), 40000))
    np.testing.assert_allclose(S.mean(0), scale / (10 - 2 - 1), rtol=0.03, atol=3e-3)
    rng = np.random.default_rng(1)
    stats = latent_stats([rng.normal(size=(300, 2))])
    M, Lam, Psi, nu = posterior_params(stats)
    W = sample_dynamics(jax.random.PRNGKey(2), stats, 40000)
    flat = np.concatenate([W.weights[:, 0], W.biases[:, 0, :, None]], -1).reshape(40000, -1)
    np.testing.assert_allclose(flat.mean(0), M[0].reshape(-1), atol=0.01)
    # vec(W) row-major: Cov = E[Sigma] (x) Lambda^-1, E[Sigma] = Psi / (nu - D - 1)
    ref = np.kron(Psi[0] / (nu[0] - 2 - 1), np.linalg.inv(Lam[0]))
    np.testing.assert_allclose(np.cov(flat.T), ref, rtol=0.05, atol=0.03 * ref.max())  # MC sd ~ 0.007 max


def test_posterior_stats_equal_average_over_posterior_samples():
    """Expected statistics from means/covs/cross-covs equal the Monte Carlo average of the statistics of
    exact joint posterior samples (Kalman smoother of a known LDS)."""
    from ssmneuro.inference.lgssm import LGSSMParams, kalman_posterior_sample, kalman_smoother

    A, system = _system()
    C, x, y = _simulate(0, system)
    p = LGSSMParams(jnp.zeros(D), jnp.eye(D), jnp.asarray(A), jnp.zeros(D), 0.01 * jnp.eye(D), jnp.asarray(C),
                    jnp.zeros(N), 0.25 * jnp.ones(N))
    post = kalman_smoother(p, jnp.asarray(y[0][:30]))
    exact = trial_stats(post.smoothed_means, post.smoothed_covs, post.smoothed_cross_covs)
    draws = np.asarray(kalman_posterior_sample(jax.random.PRNGKey(3), p, jnp.asarray(y[0][:30]), num_samples=4000))
    mc = latent_stats(list(draws))
    for a, b in zip(exact, mc):
        np.testing.assert_allclose(np.asarray(b) / 4000, a, rtol=0.02, atol=0.02 * np.abs(a).max())


@pytest.fixture(scope="module")
def line_runs():
    """Score summaries for 40 seeded line-attractor simulations from their true latents."""
    with jax.enable_x64(True):
        A, system = _system()
        out = []
        for seed in range(40):
            _, x, _ = _simulate(seed, system)
            samples = sample_dynamics(jax.random.PRNGKey(1000 + seed), latent_stats(list(x)), 1000).weights
            out.append(summarize_scores(A, DT, samples))
        return out


def test_line_attractor_score_interval_contains_truth(line_runs):
    r = line_runs[0]
    assert abs(r.score - TRUE_SCORE) < 1e-9
    assert r.interval[0] <= TRUE_SCORE <= r.interval[1], r.interval
    assert r.prob_above_1 > 0.95
    assert r.time_constants.shape == (1, D) and r.samples.shape == (1000,)


def test_line_attractor_interval_coverage(line_runs):
    """Over 40 seeds the 90% interval should contain the truth about 90% of the time (binomial 5-95%: 32-39)."""
    covered = sum(r.interval[0] <= TRUE_SCORE <= r.interval[1] for r in line_runs)
    assert 30 <= covered <= 40, covered
    assert min(r.prob_above_1 for r in line_runs) > 0.95


def test_point_attractor_control():
    A, system = _system(slow=0.9, fast=(0.88, 0.85))
    _, x, _ = _simulate(0, system)
    r = summarize_scores(A, DT, sample_dynamics(jax.random.PRNGKey(5), latent_stats(list(x)), 1000).weights)
    assert r.prob_above_1 < 0.05
    assert r.interval[1] < 1


def test_score_from_smoothed_latents_of_known_model():
    """Posterior latents (Kalman smoother, known params) instead of the true ones: still covers the truth.
    (Coverage of the 90% interval over seeds 0-39 with smoothed latents: 37/40, with true latents 36/40;
    tests/analysis/check_score_calibration.py.)"""
    from ssmneuro.inference.lgssm import LGSSMParams, kalman_smoother

    A, system = _system()
    C, x, y = _simulate(0, system)
    p = LGSSMParams(jnp.zeros(D), jnp.eye(D), jnp.asarray(A), jnp.zeros(D), 0.01 * jnp.eye(D), jnp.asarray(C),
                    jnp.zeros(N), 0.25 * jnp.ones(N))
    smooth = jax.jit(jax.vmap(lambda yy: kalman_smoother(p, yy)))(jnp.asarray(y))

    class Post:
        def __init__(self, i):
            self.latent_means, self.latent_covs = smooth.smoothed_means[i], smooth.smoothed_covs[i]
            self.latent_cross_covs, self.discrete_probs = smooth.smoothed_cross_covs[i], np.ones((T, 1))

    samples = sample_dynamics(jax.random.PRNGKey(8), posterior_stats([Post(i) for i in range(TRIALS)]), 1000)
    r = summarize_scores(A, DT, samples.weights)
    assert r.interval[0] <= TRUE_SCORE <= r.interval[1], r.interval
    assert r.prob_above_1 > 0.95


def test_two_state_scores_per_state_and_matching():
    A, _ = _system()
    B = np.diag([0.5, 0.45, 0.4])
    W = np.stack([B, A])
    r = summarize_scores(W, DT)
    assert r.state == 1 and r.time_constants.shape == (2, D)
    np.testing.assert_allclose(r.scores[1], TRUE_SCORE)
    assert np.isnan(r.prob_above_1) and r.method == "none"
    np.testing.assert_array_equal(match_states(W, W[::-1]), [1, 0])
    with pytest.raises(ValueError, match="state"):
        summarize_scores(W, DT, state=2)


def test_contract_with_model_posterior():
    """line_attractor_score(model, params, dt, data, key) on a known LDS through model.posterior."""
    import ssmneuro
    from ssmneuro.analysis import line_attractor_score, state_fixed_points, variance_explained

    A, _ = _system()
    model = ssmneuro.LDS(latent_dim=D, emission_dim=N)
    p = model.random_params(jax.random.PRNGKey(0), jnp.float64)
    C = np.asarray(jax.random.normal(jax.random.PRNGKey(101), (N, D)))
    p = p._replace(dynamics=p.dynamics._replace(weights=jnp.asarray(A[None]), biases=jnp.zeros((1, D)),
                                                covs=0.01 * jnp.eye(D)[None]),
                   emissions=p.emissions._replace(weights=jnp.asarray(C), covs=jnp.full((N,), 0.25)))
    data = [np.asarray(model.sample(p, k, T)[2]) for k in jax.random.split(jax.random.PRNGKey(3), TRIALS)]
    r = line_attractor_score(model, p, DT, data=data, key=jax.random.PRNGKey(4))
    assert abs(r.score - TRUE_SCORE) < 1e-6 and r.interval[0] <= TRUE_SCORE <= r.interval[1], r.interval
    assert r.prob_above_1 > 0.95 and r.loading.shape == (N,)
    point = line_attractor_score(model, p, DT)
    assert np.isnan(point.prob_above_1) and point.samples.size == 0
    with pytest.raises(ValueError, match="key"):
        line_attractor_score(model, p, DT, data=data)
    sfp = state_fixed_points(model, p, DT)
    np.testing.assert_allclose(sfp.dynamics.fixed_points, np.zeros((1, D)), atol=1e-9)
    assert sfp.real[0]
    ve = variance_explained(model, p, data[:3])
    assert 0.5 < ve.total <= 1 and ve.per_dimension.shape == (D,)


class _RegressionModel:
    """A stand-in model whose fit is least squares on directly observed latents, returning states in
    reversed order (to exercise the state matching) and recording the warm start it was given."""

    def __init__(self):
        self.warm_starts = []

    def fit(self, data, key=None, num_iters=1, verbose=True, params=None):
        from types import SimpleNamespace

        self.warm_starts.append(params)
        x = np.concatenate([d[:-1] for d in data]), np.concatenate([d[1:] for d in data])
        A = np.linalg.lstsq(x[0], x[1], rcond=None)[0].T
        W = np.stack([np.diag([0.5, 0.45, 0.4]), A])[::-1]
        return SimpleNamespace(params=SimpleNamespace(dynamics=SimpleNamespace(weights=W)))


def test_bootstrap_resamples_trials_refits_and_matches_states():
    from types import SimpleNamespace

    from ssmneuro.analysis import line_attractor_score

    A, system = _system()
    _, x, _ = _simulate(0, system)
    model = _RegressionModel()
    params = SimpleNamespace(dynamics=SimpleNamespace(weights=np.stack([np.diag([0.5, 0.45, 0.4]), A])),
                             emissions=SimpleNamespace(weights=np.eye(D)))
    r = line_attractor_score(model, params, DT, data=list(x), key=jax.random.PRNGKey(0), method="bootstrap",
                             num_resamples=30, num_iters=2)
    assert len(model.warm_starts) == 30 and all(p is params for p in model.warm_starts)
    assert r.method == "bootstrap" and r.state == 1 and r.samples.shape == (30,)
    np.testing.assert_allclose(r.state_samples[:, 0], np.log2(np.log(0.45) / np.log(0.5)))  # matched back
    assert r.interval[0] <= TRUE_SCORE <= r.interval[1] and r.prob_above_1 > 0.95
    with pytest.raises(ValueError, match="method"):
        line_attractor_score(model, params, DT, data=list(x), key=jax.random.PRNGKey(0), method="jackknife")
