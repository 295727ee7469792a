"""Variational E-step / q(v) / ELBO of the GP-SDE against independent references (float64).

References: the core Kalman smoother of the discretised LDS (exact Euler and matrix-exponential
discretisations), the block-tridiagonal log-determinant, finite differences, stationarity by jax.grad.
"""

from functools import partial

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from ssmneuro.inference.block_tridiag import block_tridiag_posterior
from ssmneuro.inference.lgssm import LGSSMParams, kalman_smoother
from ssmneuro.models.gp import GPSDE, GPSLDS
from ssmneuro.models.gp.emissions import GPEmissionParams
from ssmneuro.models.gp.fitting import learnable, with_learnable
from ssmneuro.models.gp.kernels import LinearParams
from ssmneuro.models.gp.variational import (
    DriftPosterior,
    GPSDEParams,
    TrialData,
    collapsed_elbo,
    estep_update,
    expected_log_joint,
    explicit_elbo,
    gauss_markov_entropy,
    initial_posterior,
)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


A_TRUE = np.array([[-0.5, -2.0], [2.0, -0.5]])
B_TRUE = np.array([0.5, -0.3])


def linear_params(C, d, R):
    D = 2
    means = jnp.concatenate([jnp.asarray(A_TRUE).T, jnp.asarray(B_TRUE)[None]])  # a(x) = [x, 1]: v_d = [A_d, b_d]
    return GPSDEParams(LinearParams(jnp.zeros(D), jnp.zeros(D), jnp.zeros(())), None, GPEmissionParams(C, d, R),
                       jnp.zeros(D), jnp.eye(D), DriftPosterior(means, jnp.zeros((D, D + 1, D + 1))))


@partial(jax.jit, static_argnums=0)
def one_exact_step(spec, params, trial):
    T, D = trial.emissions.shape[0], 2
    start = initial_posterior(spec, params, trial, jnp.ones((T, D)))  # any start: one step is exact
    return estep_update(spec, params, trial, start, 1.0)


def gaussian_problem(T, N=3, seed=0):
    rng = np.random.default_rng(seed)
    C, d, R = jnp.asarray(rng.normal(size=(N, 2))), jnp.asarray(rng.normal(size=N)), jnp.full(N, 0.1)
    return C, d, R, jnp.asarray(rng.normal(size=(T, N)))


def test_linear_kernel_posterior_is_the_kalman_smoother_of_the_euler_lds():
    """One natural-gradient step with a linear drift and Gaussian emissions is exact (tolerance 1e-9)."""
    dt, T = 0.01, 151  # the shape of the dt = 0.01 case below: one compilation serves both tests
    C, d, R, y = gaussian_problem(T)
    spec = GPSDE(2, kernel="linear", emissions="gaussian", dt=dt, quadrature_points=2)
    params = linear_params(C, d, R)
    trial = TrialData(y, jnp.ones(y.shape, bool), jnp.ones(T - 1))
    post = one_exact_step(spec, params, trial)
    lds = LGSSMParams(jnp.zeros(2), jnp.eye(2), jnp.eye(2) + dt * A_TRUE, dt * B_TRUE, dt * jnp.eye(2), C, d, R)
    ks = jax.jit(kalman_smoother)(lds, y)
    np.testing.assert_allclose(post.means, ks.smoothed_means, atol=1e-9)
    np.testing.assert_allclose(post.covs, ks.smoothed_covs, atol=1e-9)
    np.testing.assert_allclose(post.cross_covs, ks.smoothed_cross_covs, atol=1e-9)
    # with f known exactly, the ELBO (less the q(v) KL) is the log-likelihood
    elbo = jax.jit(lambda po: expected_log_joint(spec, params, trial, po.means, po.covs, po.cross_covs)
                   + gauss_markov_entropy(po.means, po.covs, po.cross_covs, trial.step_weights))(post)
    np.testing.assert_allclose(elbo, ks.log_likelihood, rtol=1e-10)


def exact_discretisation(dt):
    """Van Loan: x(t + dt) = F x + g + N(0, Q) for dx = (A x + b) dt + dW."""
    D = 2
    F = scipy.linalg.expm(A_TRUE * dt)
    g = np.linalg.solve(A_TRUE, (F - np.eye(D)) @ B_TRUE)
    blk = scipy.linalg.expm(np.block([[-A_TRUE, np.eye(D)], [np.zeros((D, D)), A_TRUE.T]]) * dt)
    Q = blk[D:, D:].T @ blk[:D, D:]
    return F, g, 0.5 * (Q + Q.T)


def test_discretisation_error_shrinks_with_dt():
    """Observations every 0.1 s of a continuous-time LDS; the variational posterior on a grid of step dt
    (linear kernel) approaches the exact continuous-time smoother at the observation times, first order in dt."""
    gap, num_obs = 0.1, 16
    C, d, R, y = gaussian_problem(num_obs, seed=1)
    F, g, Q = exact_discretisation(gap)
    exact = jax.jit(kalman_smoother)(LGSSMParams(jnp.zeros(2), jnp.eye(2), F, g, Q, C, d, R), y).smoothed_means
    errors = []
    for dt in (0.02, 0.01, 0.005):
        times = np.arange(num_obs) * gap
        spec = GPSDE(2, kernel="linear", emissions="gaussian", dt=dt, quadrature_points=2)
        idx = np.rint(times / dt).astype(int)
        T = idx[-1] + 1
        Y = jnp.zeros((T, 3)).at[idx].set(y)
        mask = jnp.zeros((T, 3), bool).at[idx].set(True)
        post = one_exact_step(spec, linear_params(C, d, R), TrialData(Y, mask, jnp.ones(T - 1)))
        errors.append(float(np.max(np.abs(post.means[idx] - exact))))
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.6 * errors[1], errors
    assert errors[2] < 0.05, errors


@pytest.fixture(scope="module")
def poisson_problem():
    """A small GP-SLDS with Poisson spikes: 2 trials, one shorter (padding), T = 80, N = 6."""
    with jax.enable_x64(True):
        spec = GPSLDS(2, 2, emissions="point_process", dt=0.01, quadrature_points=3)
        rng = np.random.default_rng(0)
        kparams = spec.kernel.init_params(2, jax.random.PRNGKey(0))
        drift = DriftPosterior(jnp.asarray(rng.normal(size=(6, 2))), jnp.broadcast_to(0.1 * jnp.eye(6), (2, 6, 6)))
        em = GPEmissionParams(jnp.asarray(rng.normal(size=(6, 2))), jnp.full(6, 2.5), jnp.ones(6))
        params = GPSDEParams(kparams, None, em, jnp.zeros(2), jnp.eye(2), drift)
        T = 80
        y = jnp.asarray(rng.poisson(0.1, size=(2, T, 6)).astype(float))
        mask = jnp.ones((2, T, 6), bool).at[1, 60:].set(False)
        w = jnp.ones((2, T - 1)).at[1, 59:].set(0.0)
        trials = TrialData(y, mask, w)
        step = jax.jit(jax.vmap(lambda tr, po, rho: estep_update(spec, params, tr, po, rho), in_axes=(0, 0, None)))
        posts = jax.jit(jax.vmap(lambda tr: initial_posterior(spec, params, tr, jnp.zeros((T, 2)))))(trials)
        elbo = jax.jit(jax.vmap(lambda tr, po: explicit_elbo(spec, params, tr, po)))
        history = [elbo(trials, posts)]
        for _ in range(25):
            posts = step(trials, posts, 0.7)
            history.append(elbo(trials, posts))
        return dict(spec=spec, params=params, trials=trials, posts=posts, history=np.array(history),
                    elbos=history[-1])


def test_natural_gradient_estep_increases_elbo_and_reaches_a_stationary_point(poisson_problem):
    p = poisson_problem
    hist = p["history"]
    assert np.all(np.diff(hist, axis=0) > -1e-6), hist
    spec, params = p["spec"], p["params"]
    tr = jax.tree.map(lambda a: a[0], p["trials"])
    po = jax.tree.map(lambda a: a[0], p["posts"])
    f = lambda m, S, C: expected_log_joint(spec, params, tr, m, S, C) + gauss_markov_entropy(m, S, C, tr.step_weights)
    g_m, g_S, g_C = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(po.means, po.covs, po.cross_covs)
    g_S = 0.5 * (g_S + jnp.swapaxes(g_S, -1, -2))  # covariances are symmetric: only that part is a direction
    assert max(float(jnp.max(jnp.abs(x))) for x in (g_m, g_S, g_C)) < 1e-6


def test_padded_trial_gives_the_unpadded_posterior(poisson_problem):
    p = poisson_problem
    spec, params = p["spec"], p["params"]
    tr = jax.tree.map(lambda a: a[1, :60], p["trials"])
    tr = tr._replace(step_weights=tr.step_weights[:59])

    @jax.jit
    def run(tr):
        po = initial_posterior(spec, params, tr, jnp.zeros((60, 2)))
        po = jax.lax.fori_loop(0, 25, lambda i, po: estep_update(spec, params, tr, po, 0.7), po)
        return po, explicit_elbo(spec, params, tr, po)

    po, elbo = run(tr)
    np.testing.assert_allclose(po.means, p["posts"].means[1, :60], atol=1e-8)
    np.testing.assert_allclose(po.covs, p["posts"].covs[1, :60], atol=1e-8)
    np.testing.assert_allclose(elbo, p["elbos"][1], rtol=1e-10)


def test_entropy_from_marginals_matches_block_tridiagonal_log_determinant(poisson_problem):
    po = jax.tree.map(lambda a: a[0], poisson_problem["posts"])
    T, D = po.means.shape
    bt = jax.jit(block_tridiag_posterior)(po.J_diag, po.J_lower, po.h)
    expect = 0.5 * T * D * np.log(2 * np.pi * np.e) - 0.5 * bt.log_det_precision
    entropy = jax.jit(gauss_markov_entropy)(po.means, po.covs, po.cross_covs, jnp.ones(T - 1))
    np.testing.assert_allclose(entropy, expect, rtol=1e-10)


def test_closed_form_drift_posterior_is_optimal(poisson_problem):
    p = poisson_problem
    spec, trials, posts = p["spec"], p["trials"], p["posts"]
    value, drift = jax.jit(lambda prm: collapsed_elbo(spec, prm, trials, posts))(p["params"])
    params = p["params"]._replace(drift=drift)
    total_fn = jax.jit(lambda prm: jnp.sum(jax.vmap(lambda tr, po: explicit_elbo(spec, prm, tr, po))(trials, posts))
                       + (trials.emissions.shape[0] - 1) * _kl(prm.drift))
    total = lambda prm: float(total_fn(prm))
    np.testing.assert_allclose(total(params), value, rtol=1e-10)
    rng = np.random.default_rng(5)
    for _ in range(3):
        bumped = drift._replace(means=drift.means + 0.05 * rng.normal(size=drift.means.shape))
        assert total(params._replace(drift=bumped)) < value
    shrunk = drift._replace(covs=0.9 * drift.covs)
    assert total(params._replace(drift=shrunk)) < value


def _kl(drift):
    from ssmneuro.models.gp.variational import drift_kl

    return drift_kl(drift)


def test_elbo_gradient_matches_finite_differences(poisson_problem):
    p = poisson_problem
    spec, trials, posts = p["spec"], p["trials"], p["posts"]
    theta = learnable(p["params"])
    f = jax.jit(lambda th: collapsed_elbo(spec, with_learnable(spec, p["params"], th), trials, posts)[0])
    grad = jax.grad(f)(theta)
    flat, unravel = jax.flatten_util.ravel_pytree(theta)
    gflat, _ = jax.flatten_util.ravel_pytree(grad)
    rng = np.random.default_rng(0)
    kernel_size = len(jax.flatten_util.ravel_pytree(theta[0])[0])
    checks = list(range(kernel_size)) + list(rng.choice(np.arange(kernel_size, flat.size), 6, replace=False))
    h = 1e-5
    for i in checks:
        e = jnp.zeros_like(flat).at[i].set(h)
        fd = (f(unravel(flat + e)) - f(unravel(flat - e))) / (2 * h)
        np.testing.assert_allclose(gflat[i], fd, rtol=1e-5, atol=1e-5)


def test_parallel_solver_gives_the_sequential_estep(poisson_problem):
    import dataclasses

    p = poisson_problem
    spec_par = dataclasses.replace(p["spec"], parallel=True)
    tr = jax.tree.map(lambda a: a[0], p["trials"])
    po = jax.tree.map(lambda a: a[0], p["posts"])
    seq = jax.jit(lambda po: estep_update(p["spec"], p["params"], tr, po, 0.5))(po)
    par = jax.jit(lambda po: estep_update(spec_par, p["params"], tr, po, 0.5))(po)
    np.testing.assert_allclose(par.means, seq.means, atol=1e-9)
    np.testing.assert_allclose(par.covs, seq.covs, atol=1e-9)
    np.testing.assert_allclose(par.cross_covs, seq.cross_covs, atol=1e-9)
