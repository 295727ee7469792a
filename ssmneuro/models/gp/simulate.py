"""Simulators for GP-SDE benchmarks: Euler-Maruyama paths, spikes, and the two test systems.

- ``two_regime_drift``: Hu et al. (2024)'s synthetic gpSLDS benchmark. Two slightly unstable rotations
  about fixed points (-3, 0) (for x1 < 0) and (+3, 0) (x1 > 0), blended by pi_right(x) = sigmoid(x1 / tau),
  tau = 0.4. Each rotation is the discrete map x -> rot_scale R(theta) (x - fp) + fp per 10 ms bin,
  turned into a continuous-time drift A (x - fp) with A = (rot_scale R(theta) - I) / 0.01.
- ``van_der_pol_drift``: dx1 = s x2,  dx2 = s (mu (1 - x1^2) x2 - x1): a stable limit cycle around an
  unstable focus at the origin (mu < 2); ``van_der_pol_benchmark`` sees it through spikes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def euler_maruyama(key, drift, x0, num_steps, dt, diffusion=1.0, inputs=None, input_matrix=None):
    """x_{k+1} = x_k + dt f(x_k) + dt B u_k + sqrt(dt diffusion) eps_k;  x0 (D,) -> path (num_steps, D) from x0.

    inputs (num_steps, U) (row k drives the step k -> k+1; the last row is unused) and input_matrix B (D, U)
    add the known drive dt B u_k; both None (default): the autonomous SDE.
    """
    eps = jax.random.normal(key, (num_steps - 1, x0.shape[0]), x0.dtype) * jnp.sqrt(dt * diffusion)
    if (inputs is None) != (input_matrix is None):
        raise ValueError("euler_maruyama needs both inputs and input_matrix, or neither")
    if inputs is not None:
        inputs, input_matrix = jnp.asarray(inputs, x0.dtype), jnp.asarray(input_matrix, x0.dtype)
        if inputs.ndim != 2 or inputs.shape[0] != num_steps or input_matrix.shape != (x0.shape[0], inputs.shape[1]):
            raise ValueError(f"inputs must be ({num_steps}, U) and input_matrix ({x0.shape[0]}, U); got "
                             f"{inputs.shape} and {input_matrix.shape}")
        eps = eps + dt * inputs[:-1] @ input_matrix.T

    def step(x, e):
        x = x + dt * drift(x) + e
        return x, x

    _, xs = jax.lax.scan(step, x0, eps)
    return jnp.concatenate([x0[None], xs])


def two_regime_drift(x, tau=0.4, theta=jnp.pi / 100, rot_scale=1.003, bin_size=0.01, fixed_point=3.0):
    """Hu et al.'s two-regime rotational drift at x (2,) -> (2,)."""

    def rotation_drift(angle, fp):
        c, s = jnp.cos(angle), jnp.sin(angle)
        A = (rot_scale * jnp.array([[c, -s], [s, c]]) - jnp.eye(2)) / bin_size
        return A @ (x - fp)

    left = rotation_drift(-theta, jnp.array([-fixed_point, 0.0]))
    right = rotation_drift(theta, jnp.array([fixed_point, 0.0]))
    p_right = jax.nn.sigmoid(x[0] / tau)
    return p_right * right + (1 - p_right) * left


def van_der_pol_drift(x, mu=1.0, speed=5.0):
    """Van der Pol oscillator at x (2,) -> (2,): limit cycle of amplitude ~2, unstable focus at 0."""
    return speed * jnp.array([x[1], mu * (1 - x[0] ** 2) * x[1] - x[0]])


def spikes_from_latents(key, x, weights, biases, dt, link="softplus", binary=True):
    """Spike counts per grid step from rates g(C x + d): Poisson(rate dt), clipped to 0/1 if binary."""
    eta = x @ weights.T + biases
    rate = jax.nn.softplus(eta) if link == "softplus" else jnp.exp(eta)
    counts = jax.random.poisson(key, rate * dt).astype(x.dtype)
    return jnp.minimum(counts, 1.0) if binary else counts


def two_regime_benchmark(key, num_trials=30, num_neurons=50, duration=2.5, dt=1e-3, start=7.0):
    """Hu et al.'s synthetic data set: half the trials start at (-start, 0), half at (+start, 0).

    Readout C ~ U(0, 5) with random signs, d ~ N(6, 1); softplus rates; binary spikes.
    Returns:
        dict(latents (B, T, 2), spikes (B, T, N), weights (N, 2), biases (N,), dt).
    """
    k_x, k_sign, k_c, k_d, k_s = jax.random.split(key, 5)
    T = int(round(duration / dt))
    x0 = jnp.where(jnp.arange(num_trials)[:, None] < num_trials // 2, -start, start) * jnp.array([1.0, 0.0])
    xs = jax.vmap(lambda k, x: euler_maruyama(k, two_regime_drift, x, T, dt))(jax.random.split(k_x, num_trials), x0)
    signs = 2.0 * jax.random.bernoulli(k_sign, 0.5, (num_neurons, 2)) - 1.0
    C = jax.random.uniform(k_c, (num_neurons, 2), minval=0.0, maxval=5.0) * signs
    d = 6.0 + jax.random.normal(k_d, (num_neurons,))
    spikes = jax.vmap(lambda k, x: spikes_from_latents(k, x, C, d, dt))(jax.random.split(k_s, num_trials), xs)
    return dict(latents=xs, spikes=spikes, weights=C, biases=d, dt=dt)


def van_der_pol_benchmark(key, num_trials=8, num_near_focus=4, num_neurons=120, duration=3.0, dt=5e-3, scale=3.0,
                          mu=1.0, speed=4.0, focus_radius=1.0, weight_scale=1.0, bias=3.0):
    """A Van der Pol oscillator seen through point-process spikes (the GP-SDE test system).

    Latent drift f(x) = scale * van_der_pol_drift(x / scale, mu, speed) with unit diffusion: a limit cycle of
    amplitude ~2 scale around an unstable focus at 0 with Jacobian speed [[0, 1], [-1, mu]] (eigenvalues
    2 +- 3.46i at mu = 1, speed = 4). The cycle repels paths away from the focus within ~1 s, so trials started
    on or outside the cycle never visit it: the first num_near_focus trials start uniformly in the disk of
    radius focus_radius around the focus, the others uniformly in the square [-2 scale, 2 scale]^2.
    Readout C ~ N(0, weight_scale^2), d = bias; softplus rates; binary spikes per dt step.
    Returns:
        dict(latents (B, T, 2), spikes (B, T, N), weights (N, 2), biases (N,), dt, drift (the true f: (2,) -> (2,))).
    """
    drift = lambda x: scale * van_der_pol_drift(x / scale, mu=mu, speed=speed)
    T = int(round(duration / dt))
    k_out, k_r, k_a, k_x, k_c, k_s = jax.random.split(key, 6)
    x0 = jax.random.uniform(k_out, (num_trials, 2), minval=-2 * scale, maxval=2 * scale)
    radius = focus_radius * jnp.sqrt(jax.random.uniform(k_r, (num_near_focus,)))
    angle = 2 * jnp.pi * jax.random.uniform(k_a, (num_near_focus,))
    x0 = x0.at[:num_near_focus].set(radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], 1))
    xs = jax.vmap(lambda k, x: euler_maruyama(k, drift, x, T, dt))(jax.random.split(k_x, num_trials), x0)
    C = weight_scale * jax.random.normal(k_c, (num_neurons, 2))
    d = jnp.full(num_neurons, bias)
    spikes = jax.vmap(lambda k, x: spikes_from_latents(k, x, C, d, dt))(jax.random.split(k_s, num_trials), xs)
    return dict(latents=xs, spikes=spikes, weights=C, biases=d, dt=dt, drift=drift)
