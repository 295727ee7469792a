"""The GPSDE / GPSLDS shell: fitting runs and climbs, boundary validation, drift API, data gridding, analysis."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssmneuro
from ssmneuro.analysis.gp_attractors import (
    line_attractor_score_posterior,
    plot_flow_field,
    sample_fixed_points,
    slow_point_probability,
)
from ssmneuro.models.gp.data import bin_spike_times, grid_trials
from ssmneuro.models.gp.kernels import regime_probs
from ssmneuro.models.gp.simulate import euler_maruyama, spikes_from_latents, two_regime_drift


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def small_fit():
    """GP-SLDS on 4 short spiking trials of the two-regime system (dt = 5 ms, 2 s, 40 neurons)."""
    with jax.enable_x64(True):
        dt, T = 5e-3, 400
        key = jax.random.PRNGKey(0)
        x0 = jnp.array([[-6.0, 0.0], [6.0, 0.0], [-5.0, 2.0], [5.0, -2.0]])
        xs = jax.vmap(lambda k, x: euler_maruyama(k, two_regime_drift, x, T, dt))(jax.random.split(key, 4), x0)
        C = jax.random.uniform(jax.random.PRNGKey(1), (40, 2), minval=-3, maxval=3)
        d = jnp.full(40, 6.0)
        y = jax.vmap(lambda k, x: spikes_from_latents(k, x, C, d, dt, binary=False))(jax.random.split(key, 4), xs)
        model = ssmneuro.GPSLDS(2, 2, emissions="poisson", dt=dt, init_latent_scale=1.0)
        res = model.fit(np.asarray(y), key=jax.random.PRNGKey(2), num_iters=15, num_mstep_iters=5, learning_rate=0.05)
        return dict(model=model, res=res, xs=np.asarray(xs))


def test_fit_climbs_and_recovers_latents(small_fit):
    res = small_fit["res"]
    assert res.elbos.shape == (15,) and not res.rejected
    assert res.elbos[-1] > res.elbos[0] + 1.0, res.elbos
    assert res.best_iteration == int(np.argmax(res.elbos))
    X = np.concatenate([p.latent_means for p in res.posterior])
    Xt = small_fit["xs"].reshape(-1, 2)
    Xa = np.c_[X, np.ones(len(X))]
    pred = Xa @ np.linalg.lstsq(Xa, Xt, rcond=None)[0]
    r2 = 1 - ((Xt - pred) ** 2).sum() / ((Xt - Xt.mean(0)) ** 2).sum()
    assert r2 > 0.9, r2


def test_drift_api_and_regime_dynamics_agree(small_fit):
    model, params = small_fit["model"], small_fit["res"].params
    x = jnp.asarray(np.random.default_rng(0).normal(size=(7, 2)) * 3)
    mean, var = model.drift(params, x)
    assert mean.shape == (7, 2) and var.shape == (7, 2) and np.all(var > 0)
    A, b = model.regime_dynamics(params)
    pi = jax.vmap(lambda z: regime_probs(params.kernel.boundary_weights, z, model.tau))(x)
    expect = jnp.einsum("pj,jde,pe->pd", pi, A, x) + pi @ b
    np.testing.assert_allclose(mean, expect, rtol=1e-10, atol=1e-10)
    cov = model.drift_covariance(params, x)
    np.testing.assert_allclose(jnp.diagonal(cov, axis1=1, axis2=2).T, var, rtol=1e-10)


def test_slow_point_probability_matches_monte_carlo(small_fit):
    """Closed form from per-dimension variances vs sampling drift functions (SSL: exact feature GP)."""
    model, params = small_fit["model"], small_fit["res"].params
    x = jnp.asarray([[3.0, 0.0], [0.0, 0.0], [-3.0, 1.0]])
    mean, _ = model.drift(params, x)
    eps = float(jnp.max(jnp.abs(mean))) * 0.5 + 1.0
    p = slow_point_probability(model, params, x, eps)
    w = model.sample_drift_weights(params, jax.random.PRNGKey(0), 20000)
    A, _ = model.kernel_obj.features(params.kernel, x)
    f = jnp.einsum("pm,smd->spd", A, w)
    mc = jnp.mean(jnp.all(jnp.abs(f) < eps, axis=-1), axis=0)
    np.testing.assert_allclose(p, mc, atol=0.015)


def test_fixed_points_of_a_known_linear_drift():
    """Linear kernel with q(v) concentrated on f(x) = A (x - x*): one stable focus at x*, score from eigenvalues."""
    model = ssmneuro.GPSDE(2, kernel="linear", emissions="gaussian")
    from ssmneuro.models.gp.emissions import GPEmissionParams
    from ssmneuro.models.gp.kernels import Linear
    from ssmneuro.models.gp.variational import DriftPosterior, GPSDEParams

    A = jnp.array([[-0.1, -1.0], [1.0, -2.0]])
    xstar = jnp.array([1.0, -2.0])
    means = jnp.concatenate([A.T, (-A @ xstar)[None]])
    params = GPSDEParams(Linear().init_params(2), None, GPEmissionParams(jnp.eye(2), jnp.zeros(2), jnp.ones(2)),
                         jnp.zeros(2), jnp.eye(2), DriftPosterior(means, jnp.broadcast_to(1e-12 * jnp.eye(3), (2, 3, 3))))
    starts = np.random.default_rng(0).uniform(-5, 5, size=(10, 2))
    fps = sample_fixed_points(model, params, jax.random.PRNGKey(0), starts, num_samples=3)
    for pts, kind in zip(fps.points, fps.kind):
        np.testing.assert_allclose(pts, xstar[None], atol=1e-5)
        assert list(kind) == ["stable"]
    ev = np.linalg.eigvals(np.asarray(A))
    tau = np.sort(1 / np.abs(ev.real))[::-1]
    post = line_attractor_score_posterior(fps)
    np.testing.assert_allclose(post.samples, np.log2(tau[0] / tau[1]), rtol=1e-4)


def test_flow_field_plot_returns_axes(small_fit):
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_flow_field(small_fit["model"], small_fit["res"].params, (-4, 4), (-4, 4), num=6)
    assert ax.get_xlabel() == "x1"


def test_bad_input_raises_clear_errors():
    model = ssmneuro.GPSLDS(2, 2, emissions="poisson")
    y = np.ones((20, 3))
    with pytest.raises(ValueError, match="random key"):
        model.fit(y)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.where(np.eye(20, 3) > 0, np.nan, 1.0), key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(-y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="emissions must be one of"):
        ssmneuro.GPSDE(2, emissions="bernoulli").fit(y, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="expected shape"):
        model.fit([y, np.ones((20, 4))], key=jax.random.PRNGKey(0))


def test_irregular_times_go_on_the_grid_with_masks():
    y = np.arange(8.0).reshape(4, 2)
    (yg, mg, tg), = grid_trials(y, 0.1, times=[np.array([1.0, 1.1, 1.4, 1.5])])
    assert yg.shape == (6, 2) and np.allclose(tg, 1.0 + 0.1 * np.arange(6))
    np.testing.assert_array_equal(mg[:, 0], [True, True, False, False, True, True])
    np.testing.assert_array_equal(yg[4], y[2])
    with pytest.raises(ValueError, match="same grid step"):
        grid_trials(y, 0.5, times=[np.array([1.0, 1.1, 1.4, 1.5])])
    counts = bin_spike_times([[0.001, 0.0015, 0.5], [0.999]], 0.0, 1.0, 0.01)
    assert counts.shape == (100, 2) and counts[0, 0] == 2 and counts[50, 0] == 1 and counts[99, 1] == 1


def test_sample_shapes_and_validation(small_fit):
    model, params = small_fit["model"], small_fit["res"].params
    x, y = model.sample(params, jax.random.PRNGKey(0), 50)
    assert x.shape == (50, 2) and y.shape == (50, 40) and np.all(np.asarray(y) >= 0)
    with pytest.raises(ValueError, match="num_regimes >= 2"):
        ssmneuro.GPSLDS(2, 1).fit(np.ones((10, 3)), key=jax.random.PRNGKey(0))
