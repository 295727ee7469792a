"""One linearised step of each method: solve the linear(ised) recurrence for all T states at once.

Linearising x_t = f(x_{t-1}, u_t) around the guess x̄ (prev_t = x̄_{t-1}, prev_1 = x_0) gives
    x_t = J_t x_{t-1} + b_t,   b_t = f(prev_t, u_t) - J_t prev_t,
exact at t = 1 because x_0 is known. DEER solves it as is; ELK solves the Levenberg-Marquardt problem
    min_x  sum_t ||x_t - J_t x_{t-1} - b_t||^2 + (1/trust) sum_t ||x_t - x̄_t||^2,
which is the posterior mean of a linear Gaussian state space model with dynamics (J_t, b_t, I) and
observations x̄_t = x_t + N(0, trust I): one call of the core's parallel Kalman smoother.
Arguments: J (T, D, D) dense or (T, D) diagonal Jacobians, fx (T, D) = f(prev_t, u_t), prev (T, D),
guess (T, D) = x̄, x0 (D,). Each returns the new states (T, D).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssmneuro.inference.scan import dense_scan, diagonal_scan


def affine_offsets(J, fx, prev):
    """b_t = f(prev_t) - J_t prev_t: (T, D), for dense (T, D, D) or diagonal (T, D) J."""
    if J.ndim == 3:
        return fx - jnp.einsum("tij,tj->ti", J, prev)
    return fx - J * prev


def newton_step(J, fx, prev, x0, parallel=True):
    """DEER: x_t = J_t x_{t-1} + b_t by a dense associative scan."""
    return dense_scan(J, affine_offsets(J, fx, prev), initial_state=x0, parallel=parallel)


def quasi_newton_step(d, fx, prev, x0, parallel=True):
    """Quasi-DEER: x_t = d_t * x_{t-1} + b_t by an elementwise associative scan."""
    return diagonal_scan(d, affine_offsets(d, fx, prev), initial_state=x0, parallel=parallel)


def _lm_smoother_params(J, b, first_mean, trust):
    """The LGSSM whose posterior mean is the Levenberg-Marquardt step (dense J (T, D, D))."""
    from ssmneuro.inference.lgssm import LGSSMParams

    D = b.shape[-1]
    eye = jnp.eye(D, dtype=b.dtype)
    return LGSSMParams(
        initial_mean=first_mean,
        initial_cov=eye,
        dynamics_matrix=J[1:],
        dynamics_bias=b[1:],
        dynamics_cov=eye,
        emission_matrix=eye,
        emission_bias=jnp.zeros(D, b.dtype),
        emission_cov=jnp.full((D,), trust, b.dtype),
    )


def elk_step(J, fx, prev, guess, trust, parallel=True):
    """ELK: Kalman-smoothed means of dynamics x_t = J_t x_{t-1} + b_t + N(0, I), obs x̄_t ~ N(x_t, trust I).

    x_1's prior is N(f(x_0, u_1), I) since x_0 is known.
    """
    from ssmneuro.inference.lgssm import kalman_smoother

    params = _lm_smoother_params(J, affine_offsets(J, fx, prev), fx[0], trust)
    return kalman_smoother(params, guess, parallel=parallel).smoothed_means


def quasi_elk_step(d, fx, prev, guess, trust, parallel=True):
    """Quasi-ELK: with diagonal d (T, D) the problem splits into D scalar smoothers (vmapped, D=1)."""
    b = affine_offsets(d, fx, prev)

    def one_dimension(d_i, b_i, fx0_i, guess_i):
        return elk_step_scalar(d_i, b_i, fx0_i, guess_i, trust, parallel)

    return jax.vmap(one_dimension, in_axes=(1, 1, 0, 1), out_axes=1)(d, b, fx[0], guess)


def elk_step_scalar(d, b, first_mean, guess, trust, parallel=True):
    """One scalar Levenberg-Marquardt smoother: d, b, guess (T,), first_mean () -> (T,)."""
    from ssmneuro.inference.lgssm import kalman_smoother

    params = _lm_smoother_params(d[:, None, None], b[:, None], first_mean[None], trust)
    return kalman_smoother(params, guess[:, None], parallel=parallel).smoothed_means[:, 0]
