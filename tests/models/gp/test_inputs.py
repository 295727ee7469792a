"""Known inputs in the GP-SDE: dx = f(x) dt + B u(t) dt + sqrt(Sigma) dW (float64).

References: the core Kalman smoother with a dynamics input matrix, finite differences and jax.grad of
the collapsed ELBO, the input-free model (input_dim = 0), and recovery of B from simulated data.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssmneuro
from ssmneuro.inference.lgssm import LGSSMParams, kalman_smoother
from ssmneuro.models.gp.data import grid_inputs, grid_trials
from ssmneuro.models.gp.emissions import GPEmissionParams
from ssmneuro.models.gp.kernels import LinearParams
from ssmneuro.models.gp.simulate import euler_maruyama
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
    optimal_input_matrix,
)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


A_TRUE = np.array([[-1.0, -2.0], [2.0, -1.0]])
BIAS_TRUE = np.array([0.5, -0.3])
B_TRUE = np.array([[9.0, 0.0], [-4.5, 6.0]])  # (D, U) = (2, 2)


def step_inputs(T, onsets=(0.3, 0.6), dt=0.01):
    """Two step inputs switching on at fractions of the trial: (T, 2)."""
    t = np.arange(T) * dt
    return np.stack([(t >= f * T * dt).astype(float) for f in onsets], 1)


def linear_params(C, d, R, B):
    D = 2
    means = jnp.concatenate([jnp.asarray(A_TRUE).T, jnp.asarray(BIAS_TRUE)[None]])  # a(x) = [x, 1]
    return GPSDEParams(LinearParams(jnp.zeros(D), jnp.zeros(D), jnp.zeros(())), None, GPEmissionParams(C, d, R),
                       jnp.zeros(D), jnp.eye(D), DriftPosterior(means, jnp.zeros((D, D + 1, D + 1))), B)


def gaussian_problem(T, N=3, seed=0):
    rng = np.random.default_rng(seed)
    C, d, R = jnp.asarray(rng.normal(size=(N, 2))), jnp.asarray(rng.normal(size=N)), jnp.full(N, 0.1)
    return C, d, R, jnp.asarray(rng.normal(size=(T, N)))


@partial(jax.jit, static_argnums=0)
def one_exact_step(spec, params, trial):
    T, D = trial.emissions.shape[0], 2
    start = initial_posterior(spec, params, trial, jnp.ones((T, D)))
    return estep_update(spec, params, trial, start, 1.0)


def test_linear_kernel_posterior_with_inputs_is_the_kalman_smoother():
    """The E-step's input drift is the LDS's dt B u_k: one step is exact, and the ELBO is the log-likelihood."""
    dt, T = 0.01, 120
    C, d, R, y = gaussian_problem(T)
    u = jnp.asarray(step_inputs(T))
    spec = ssmneuro.GPSDE(2, kernel="linear", emissions="gaussian", dt=dt, quadrature_points=2, input_dim=2)
    params = linear_params(C, d, R, jnp.asarray(B_TRUE))
    trial = TrialData(y, jnp.ones(y.shape, bool), jnp.ones(T - 1), u)
    post = one_exact_step(spec, params, trial)
    lds = LGSSMParams(jnp.zeros(2), jnp.eye(2), jnp.eye(2) + dt * A_TRUE, dt * BIAS_TRUE, dt * jnp.eye(2), C, d, R,
                      dynamics_input_matrix=dt * jnp.asarray(B_TRUE))
    ks = jax.jit(kalman_smoother)(lds, y, u)
    np.testing.assert_allclose(post.means, ks.smoothed_means, atol=1e-9)
    np.testing.assert_allclose(post.covs, ks.smoothed_covs, atol=1e-9)
    np.testing.assert_allclose(post.cross_covs, ks.smoothed_cross_covs, atol=1e-9)
    elbo = jax.jit(lambda po: expected_log_joint(spec, params, trial, po.means, po.covs, po.cross_covs)
                   + gauss_markov_entropy(po.means, po.covs, po.cross_covs, trial.step_weights))(post)
    np.testing.assert_allclose(elbo, ks.log_likelihood, rtol=1e-10)
    # the input matters: with B = 0 the posterior is a different one
    no_drive = one_exact_step(spec, params._replace(input_matrix=jnp.zeros((2, 2))), trial)
    assert float(jnp.max(jnp.abs(no_drive.means - post.means))) > 1e-2


@pytest.fixture(scope="module")
def poisson_problem():
    """A small GP-SLDS with Poisson counts and two step inputs: 2 trials, one padded, T = 60, N = 5.

    q(x): a Gauss-Markov chain pulled towards a random smooth path (any valid q(x) serves the ELBO checks).
    The collapsed ELBO and its gradient in B are compiled once here and shared by the tests.
    """
    with jax.enable_x64(True):
        spec = ssmneuro.GPSLDS(2, 2, emissions="poisson", dt=0.01, quadrature_points=3, input_dim=2)
        rng = np.random.default_rng(1)
        kparams = spec.kernel.init_params(2, jax.random.PRNGKey(0))
        drift = DriftPosterior(jnp.asarray(rng.normal(size=(6, 2))), jnp.broadcast_to(0.1 * jnp.eye(6), (2, 6, 6)))
        em = GPEmissionParams(jnp.asarray(rng.normal(size=(5, 2))), jnp.full(5, 0.5), jnp.ones(5))
        B = jnp.asarray(rng.normal(size=(2, 2)))
        params = GPSDEParams(kparams, None, em, jnp.zeros(2), jnp.eye(2), drift, B)
        T = 60
        y = jnp.asarray(rng.poisson(0.3, size=(2, T, 5)).astype(float))
        mask = jnp.ones((2, T, 5), bool).at[1, 45:].set(False)
        w = jnp.ones((2, T - 1)).at[1, 44:].set(0.0)
        u = jnp.asarray(np.stack([step_inputs(T), step_inputs(T, (0.5, 0.2))]))
        trials = TrialData(y, mask, w, u)
        path = jnp.asarray(np.cumsum(rng.normal(size=(2, T, 2)), axis=1) * 0.2)
        posts = jax.jit(jax.vmap(lambda tr, x: initial_posterior(spec, params, tr, x, 10.0)))(trials, path)
        collapsed = jax.jit(jax.value_and_grad(
            lambda B: collapsed_elbo(spec, params._replace(input_matrix=B), trials, posts)[0]))
        return dict(spec=spec, params=params, trials=trials, posts=posts, collapsed=collapsed)


def test_elbo_gradient_wrt_input_matrix_matches_finite_differences(poisson_problem):
    """Collapsed ELBO (q(v) at its optimum) and explicit ELBO (q(v) fixed, through the E-step's dynamics term)."""
    p = poisson_problem
    spec, trials, posts, params = p["spec"], p["trials"], p["posts"], p["params"]
    explicit = jax.jit(jax.value_and_grad(lambda B: jnp.sum(jax.vmap(
        lambda tr, po: explicit_elbo(spec, params._replace(input_matrix=B), tr, po))(trials, posts))))
    B0 = params.input_matrix
    h = 1e-5
    for f in (p["collapsed"], explicit):
        grad = f(B0)[1]
        assert float(jnp.max(jnp.abs(grad))) > 1e-2  # B is not a dead parameter
        for i in range(2):
            for j in range(2):
                e = jnp.zeros_like(B0).at[i, j].set(h)
                fd = (f(B0 + e)[0] - f(B0 - e)[0]) / (2 * h)
                np.testing.assert_allclose(grad[i, j], fd, rtol=1e-6, atol=1e-6)


def test_closed_form_input_matrix_maximises_the_collapsed_elbo(poisson_problem):
    p = poisson_problem
    spec, trials, posts, params, f = p["spec"], p["trials"], p["posts"], p["params"], p["collapsed"]
    B_opt = jax.jit(lambda prm: optimal_input_matrix(spec, prm, trials, posts))(params)
    best, g = f(B_opt)
    g0 = f(params.input_matrix)[1]
    assert float(jnp.max(jnp.abs(g))) < 1e-8 * float(jnp.max(jnp.abs(g0)))
    rng = np.random.default_rng(2)
    for _ in range(3):
        assert float(f(B_opt + 0.05 * rng.normal(size=B_opt.shape))[0]) < float(best)
    assert float(f(params.input_matrix)[0]) < float(best)


def test_no_inputs_gives_the_autonomous_model(poisson_problem):
    """input_matrix None or (D, 0), or inputs None, trace to the very program of the input-free model (so the
    results are bitwise those of input_dim = 0); B = 0 with inputs gives the same numbers."""
    p = poisson_problem
    spec, trials, posts, params = p["spec"], p["trials"], p["posts"], p["params"]

    def run(prm, trs):
        value, drift = collapsed_elbo(spec, prm, trs, posts)
        new = jax.vmap(lambda tr, po: estep_update(spec, prm, tr, po, 0.7))(trs, posts)
        return value, drift.means, new.means, new.covs

    program = lambda prm, trs: str(jax.make_jaxpr(lambda: run(prm, trs))())
    reference = program(params._replace(input_matrix=None), trials._replace(inputs=None))
    for prm, trs in [(params._replace(input_matrix=jnp.zeros((2, 0))), trials._replace(inputs=None)),
                     (params._replace(input_matrix=jnp.zeros((2, 0))), trials._replace(inputs=trials.inputs[..., :0])),
                     (params, trials._replace(inputs=None)),
                     (params._replace(input_matrix=None), trials)]:
        assert program(prm, trs) == reference
    assert program(params, trials) != reference  # with inputs it is another program
    value, drift = jax.jit(lambda: collapsed_elbo(spec, params._replace(input_matrix=None), trials, posts))()
    value_b0, drift_b0 = jax.jit(lambda: collapsed_elbo(
        spec, params._replace(input_matrix=jnp.zeros((2, 2))), trials, posts))()
    np.testing.assert_allclose(value_b0, value, rtol=1e-13)
    np.testing.assert_allclose(drift_b0.means, drift.means, rtol=1e-12, atol=1e-12)


def test_simulator_adds_the_input_drive():
    """Zero drift, no noise: x_k = x_0 + dt B sum_{j<k} u_j; the model's sample uses the same drive."""
    T, dt = 50, 0.02
    u = jnp.asarray(step_inputs(T, dt=dt))
    B = jnp.asarray(B_TRUE)
    x0 = jnp.array([1.0, -1.0])
    x = euler_maruyama(jax.random.PRNGKey(0), lambda z: jnp.zeros_like(z), x0, T, dt, 0.0, u, B)
    expect = x0 + dt * jnp.concatenate([jnp.zeros((1, 2)), jnp.cumsum(u[:-1] @ B.T, 0)])
    np.testing.assert_allclose(x, expect, atol=1e-12)
    with pytest.raises(ValueError, match="both inputs and input_matrix"):
        euler_maruyama(jax.random.PRNGKey(0), lambda z: z, x0, T, dt, 1.0, u, None)
    # the model's sampler: same key, same drift sample, difference = the integrated drive for a linear drift
    model = ssmneuro.GPSDE(2, kernel="linear", emissions="gaussian", dt=dt, diffusion=1e-30, input_dim=2)
    C, d, R, _ = gaussian_problem(2)
    params = linear_params(C, d, R, B)._replace(drift=DriftPosterior(jnp.zeros((3, 2)), jnp.zeros((2, 3, 3))))
    x_u, _ = model.sample(params, jax.random.PRNGKey(1), T, x0=x0, posterior_mean=True, inputs=u)
    x_0, _ = model.sample(params, jax.random.PRNGKey(1), T, x0=x0, posterior_mean=True)
    np.testing.assert_allclose(x_u - x_0, expect - x0, atol=1e-10)


@pytest.mark.slow
def test_fit_recovers_the_input_matrix():
    """Simulate a linear-drift GP-SDE driven by two on/off pulse inputs (0.25 s blocks), observe it with
    Gaussian noise, fit a linear-kernel GPSDE with input_dim = 2; after the latent affine alignment B matches
    to 20% (least squares on the *true* latents reaches ~5-10% on these 30 s of data).
    Slow (~40 s here) only because compiling ``fit`` takes ~35 s on a small CPU, with or without inputs."""
    dt, T, N, num_trials = 0.01, 500, 8, 6
    rng = np.random.default_rng(0)
    C = rng.normal(size=(N, 2))
    d = rng.normal(size=N)
    us = [np.repeat(rng.integers(0, 2, size=(T // 25, 2)).astype(float), 25, axis=0) for _ in range(num_trials)]
    drift = lambda x: jnp.asarray(A_TRUE) @ x + jnp.asarray(BIAS_TRUE)
    keys = jax.random.split(jax.random.PRNGKey(0), num_trials)
    xs = [np.asarray(euler_maruyama(k, drift, jnp.zeros(2), T, dt, 1.0, jnp.asarray(u), jnp.asarray(B_TRUE)))
          for k, u in zip(keys, us)]
    ys = [x @ C.T + d + 0.2 * rng.normal(size=(T, N)) for x in xs]
    model = ssmneuro.GPSDE(2, kernel="linear", emissions="gaussian", dt=dt, quadrature_points=2, input_dim=2)
    res = model.fit(ys, inputs=us, key=jax.random.PRNGKey(1), num_iters=20, num_mstep_iters=10,
                    learning_rate=0.05)
    assert not res.rejected and res.elbos[-1] > res.elbos[0], res.elbos
    assert res.params.input_matrix.shape == (2, 2)
    # posterior() with inputs (same shapes: the compiled E-step is reused) reproduces the fit's latents
    again = model.posterior(res.params, ys, inputs=us, num_iters=2)
    np.testing.assert_allclose(again[0].latent_means, res.posterior[0].latent_means, atol=0.05)
    X = np.concatenate([p.latent_means for p in res.posterior])
    Xt = np.concatenate(xs)
    W = np.linalg.lstsq(np.c_[X, np.ones(len(X))], Xt, rcond=None)[0]
    Q = W[:2].T  # x_true ~ Q x_fit + c, so B_true ~ Q B_fit
    B_aligned = Q @ np.asarray(res.params.input_matrix)
    rel = np.linalg.norm(B_aligned - B_TRUE) / np.linalg.norm(B_TRUE)
    assert rel < 0.2, (rel, B_aligned)


def test_bad_inputs_raise_clear_errors():
    y = np.ones((20, 3))
    key = jax.random.PRNGKey(0)
    model = ssmneuro.GPSDE(2, kernel="linear", emissions="gaussian", input_dim=2)
    with pytest.raises(ValueError, match="input_dim=2: pass inputs"):
        model.fit(y, key=key)
    with pytest.raises(ValueError, match=r"inputs shape \(20, 1\), expected \(20, 2\)"):
        model.fit(y, key=key, inputs=np.ones((20, 1)))
    with pytest.raises(ValueError, match=r"inputs shape \(19, 2\), expected \(20, 2\)"):
        model.fit([y, y], key=key, inputs=[np.ones((20, 2)), np.ones((19, 2))])
    with pytest.raises(ValueError, match="inputs has 1 trials but data has 2"):
        model.fit([y, y], key=key, inputs=[np.ones((20, 2))])
    with pytest.raises(ValueError, match=r"inputs must be \(T, U\)"):
        model.fit(y, key=key, inputs=np.ones(20))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(y, key=key, inputs=np.where(np.eye(20, 2) > 0, np.nan, 1.0))
    with pytest.raises(ValueError, match=r"expected \(20, 0\)"):
        ssmneuro.GPSDE(2, emissions="gaussian").fit(y, key=key, inputs=np.ones((20, 1)))
    with pytest.raises(ValueError, match="input_dim must be a non-negative integer"):
        ssmneuro.GPSLDS(2, 2, input_dim=-1).fit(y, key=key)
    C, d, R, _ = gaussian_problem(3)
    params = linear_params(C, d, R, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"input_matrix has shape \(2, 3\), expected \(2, 2\)"):
        model.sample(params, key, 10)
    with pytest.raises(ValueError, match=r"inputs shape \(10, 1\), expected \(10, 2\)"):
        model.sample(params._replace(input_matrix=None), key, 10, inputs=np.ones((10, 1)))


def test_irregular_times_hold_the_input_between_observations():
    y = np.arange(8.0).reshape(4, 2)
    times = [np.array([1.0, 1.1, 1.4, 1.5])]
    u = np.array([[1.0], [2.0], [3.0], [4.0]])
    gridded = grid_trials(y, 0.1, times=times)
    (ug,) = grid_inputs([u], y, gridded, 1, 0.1, times)
    np.testing.assert_array_equal(ug[:, 0], [1.0, 2.0, 2.0, 2.0, 3.0, 4.0])
    (ug,) = grid_inputs(u, y, grid_trials(y, 0.1), 1, 0.1)
    np.testing.assert_array_equal(ug, u)
    assert grid_inputs(None, y, gridded, 0, 0.1) is None
