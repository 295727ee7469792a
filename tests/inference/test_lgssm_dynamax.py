"""Agreement with dynamax's sequential and parallel Kalman filter/smoother on shared problems (float64).

dynamax's ``smoothed_cross_covariances`` holds E[x_t x_{t+1}^T | y]; ours is Cov(x_{t+1}, x_t | y), so
dynamax's = ours^T + m_t m_{t+1}^T. Input timing also differs: dynamax 1.0.3 predicts x_{t+1} with
inputs[t+1] (x_t = F x_{t-1} + B u_t + b), ours with inputs[t] (x_{t+1} = A x_t + B u_t + b). The shared
problem feeds dynamax the stacked inputs [u_{t-1}, u_t] with weights [B, 0] and [0, D].
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dynamax.linear_gaussian_ssm import inference as dx_seq
from dynamax.linear_gaussian_ssm import parallel_inference as dx_par

from ssmneuro.inference.lgssm import kalman_smoother
from tests.inference.lgssm_reference import random_problem

TOL = dict(rtol=1e-8, atol=1e-8)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _dynamax_problem(p, u):
    B, Dm = p.dynamics_input_matrix, p.emission_input_matrix
    inputs = jnp.concatenate([jnp.concatenate([jnp.zeros_like(u[:1]), u[:-1]]), u], axis=1)
    params = dx_seq.make_lgssm_params(
        p.initial_mean, p.initial_cov, p.dynamics_matrix, p.dynamics_cov, p.emission_matrix, p.emission_cov,
        dynamics_bias=p.dynamics_bias, dynamics_input_weights=jnp.concatenate([B, jnp.zeros_like(B)], 1),
        emissions_bias=p.emission_bias, emissions_input_weights=jnp.concatenate([jnp.zeros_like(Dm), Dm], 1))
    return params, inputs


@pytest.mark.parametrize("diagonal", [True, False])
def test_agrees_with_dynamax(diagonal):
    params, y, u, _ = random_problem(21, T=8, D=3, N=4, U=2, diagonal=diagonal)
    params = type(params)(*(None if a is None else jnp.asarray(a) for a in params))
    y, u = jnp.asarray(y), jnp.asarray(u)
    ours = kalman_smoother(params, y, u)
    dx_params, dx_inputs = _dynamax_problem(params, u)
    for dx in (dx_seq.lgssm_smoother(dx_params, y, dx_inputs), dx_par.lgssm_smoother(dx_params, y, dx_inputs)):
        np.testing.assert_allclose(ours.log_likelihood, dx.marginal_loglik, **TOL)
        np.testing.assert_allclose(ours.filtered_means, dx.filtered_means, **TOL)
        np.testing.assert_allclose(ours.filtered_covs, dx.filtered_covariances, **TOL)
        np.testing.assert_allclose(ours.smoothed_means, dx.smoothed_means, **TOL)
        np.testing.assert_allclose(ours.smoothed_covs, dx.smoothed_covariances, **TOL)
        if dx.smoothed_cross_covariances is not None:
            m = np.asarray(ours.smoothed_means)
            second_moment = np.swapaxes(ours.smoothed_cross_covs, -1, -2) + m[:-1, :, None] * m[1:, None, :]
            np.testing.assert_allclose(second_moment, dx.smoothed_cross_covariances, **TOL)
