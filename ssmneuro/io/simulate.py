"""A seeded, hypothalamus-like calcium recording with a line attractor (the demo's embedded data).

Modelled loosely on the VMHvl recordings in which an approximate line attractor integrates an intruder's
presence into a persistent, slowly decaying state (Nair et al., Cell 2023). The generative process:

* behaviour ``z_t`` in {0: no intruder, 1: intruder}: a two-state Markov chain with mean dwell times
  ``baseline_dwell_s`` and ``intruder_dwell_s``;
* latent ``x_{t+1} = A x_t + b_{z_t} + eps_t``, ``eps_t ~ N(0, diag(q))``, ``A = Q diag(lambda) Q^T`` with
  ``lambda_1 = line_eigenvalue`` (~0.999: the line attractor along ``u = Q[:, 0]``) and the others
  ``<= 0.9`` (fast, decaying directions); the intruder drives the line and offsets the first fast direction
  (``b_1 = drive * u + fast_response * (1 - lambda_2) * Q[:, 1]``);
* spikes ``s_{t,n} ~ Poisson(dt * exp(C_n x_t + d_n))``;
* calcium ``c_t = gamma c_{t-1} + s_t`` with ``gamma = exp(-dt / calcium_decay_s)`` and fluorescence
  ``F_t = amplitude * c_t + N(0, noise^2)``, the shape of GCaMP dF/F traces.

Everything random flows from one ``jax.random`` key.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.io.recording import Recording, as_recording


class HypothalamusSimulation(NamedTuple):
    """A simulated recording and the truth behind it.

    Fields:
        recording: Recording of calcium-like traces ``(T, N)`` with labels = intruder present (0/1).
        states: ``(T,)`` int, the behaviour state (0 no intruder, 1 intruder).
        latents: ``(T, D)`` the continuous latent state.
        spikes: ``(T, N)`` spike counts per frame.
        dynamics_matrix: ``(D, D)`` the shared linear dynamics ``A``.
        eigenvalues: ``(D,)`` eigenvalues of ``A`` (first = line attractor).
        line_direction: ``(D,)`` unit vector along the attractor.
        time_constants: ``(D,)`` seconds, ``-dt / log(lambda)``.
        emission_weights: ``(N, D)`` log-rate loadings ``C``.
    """

    recording: Recording
    states: np.ndarray
    latents: np.ndarray
    spikes: np.ndarray
    dynamics_matrix: np.ndarray
    eigenvalues: np.ndarray
    line_direction: np.ndarray
    time_constants: np.ndarray
    emission_weights: np.ndarray


def simulate_hypothalamus(key, num_neurons: int = 40, num_timesteps: int = 3000, dt: float = 0.1,
                          latent_dim: int = 3, line_eigenvalue: float = 0.999,
                          fast_eigenvalues=(0.9, 0.8), baseline_dwell_s: float = 30.0,
                          intruder_dwell_s: float = 15.0, drive: float = 0.005, fast_response: float = 1.0,
                          process_noise=(0.01, 0.05), base_rate_hz: float = 2.0,
                          calcium_decay_s: float = 1.0, amplitude: float = 0.2,
                          noise: float = 0.1) -> HypothalamusSimulation:
    """Simulate a line-attractor calcium recording (see the module docstring for the model).

    Args:
        key: a ``jax.random`` key (the only source of randomness).
        num_neurons, num_timesteps, dt: recording size; ``dt`` in seconds per frame.
        latent_dim: ``D`` (>= 2); eigenvalues beyond those given in ``fast_eigenvalues`` are 0.7.
        line_eigenvalue: eigenvalue along the line (close to 1: slow integration and decay).
        fast_eigenvalues: eigenvalues of the other directions (each <= 0.9).
        drive: intruder input per frame along the line.
        fast_response: steady offset along the first fast direction while the intruder is present.
        process_noise: std of the latent noise along the line and along the other directions.
    """
    if latent_dim < 2:
        raise ValueError(f"latent_dim = {latent_dim}; a line attractor needs at least 2 latent dimensions")
    if num_timesteps < num_neurons:
        raise ValueError("num_timesteps must be at least num_neurons for a usable recording")
    fast = list(fast_eigenvalues)[:latent_dim - 1] + [0.7] * max(0, latent_dim - 1 - len(fast_eigenvalues))
    eigenvalues = jnp.array([line_eigenvalue, *fast], dtype=jnp.float32)
    k_rot, k_z, k_x, k_c, k_s, k_n = jax.random.split(key, 6)
    Q, _ = jnp.linalg.qr(jax.random.normal(k_rot, (latent_dim, latent_dim)))
    A = Q @ jnp.diag(eigenvalues) @ Q.T
    u = Q[:, 0]
    bias_intruder = drive * u + fast_response * (1 - eigenvalues[1]) * Q[:, 1]
    biases = jnp.stack([jnp.zeros(latent_dim), bias_intruder])
    noise_std = jnp.concatenate([jnp.array([process_noise[0]]),
                                 jnp.full((latent_dim - 1,), process_noise[1])])
    noise_cov_sqrt = Q @ jnp.diag(noise_std)

    states = _behaviour_states(k_z, num_timesteps, dt, baseline_dwell_s, intruder_dwell_s)
    latents = _latents(k_x, A, biases, noise_cov_sqrt, states)
    C = jax.random.normal(k_c, (num_neurons, latent_dim)) / jnp.sqrt(latent_dim)
    C = C.at[:, 0].set(jnp.abs(C[:, 0]) + 0.3)  # most neurons ramp up along the line, as in VMHvl
    log_rates = latents @ C.T + jnp.log(base_rate_hz)
    spikes = jax.random.poisson(k_s, dt * jnp.exp(jnp.minimum(log_rates, 6.0))).astype(jnp.float32)
    gamma = jnp.exp(-dt / calcium_decay_s)
    calcium = jax.lax.scan(lambda c, s: (gamma * c + s,) * 2, jnp.zeros(num_neurons), spikes)[1]
    fluorescence = amplitude * calcium + noise * jax.random.normal(k_n, calcium.shape)

    time_constants = -dt / jnp.log(eigenvalues)
    rec = as_recording(np.asarray(fluorescence), dt=dt, labels=np.asarray(states),
                       label_names=("no intruder", "intruder"), name="simulated hypothalamus")
    return HypothalamusSimulation(recording=rec, states=np.asarray(states), latents=np.asarray(latents),
                                  spikes=np.asarray(spikes), dynamics_matrix=np.asarray(A),
                                  eigenvalues=np.asarray(eigenvalues), line_direction=np.asarray(u),
                                  time_constants=np.asarray(time_constants),
                                  emission_weights=np.asarray(C))


def _behaviour_states(key, T, dt, baseline_dwell_s, intruder_dwell_s):
    """Two-state Markov chain, leaving state k with probability ``dt / dwell_k`` per frame."""
    leave = jnp.array([dt / baseline_dwell_s, dt / intruder_dwell_s])
    flips = jax.random.uniform(key, (T - 1,))

    def step(z, f):
        z_next = jnp.where(f < leave[z], 1 - z, z)
        return z_next, z_next

    _, rest = jax.lax.scan(step, jnp.int32(0), flips)
    return jnp.concatenate([jnp.zeros(1, jnp.int32), rest])


def _latents(key, A, biases, noise_cov_sqrt, states):
    """``x_{t+1} = A x_t + b_{z_t} + L eps_t`` from ``x_0 = 0``."""
    eps = jax.random.normal(key, (states.shape[0] - 1, A.shape[0]))

    def step(x, inp):
        z, e = inp
        x_next = A @ x + biases[z] + noise_cov_sqrt @ e
        return x_next, x_next

    x0 = jnp.zeros(A.shape[0])
    _, rest = jax.lax.scan(step, x0, (states[:-1], eps))
    return jnp.concatenate([x0[None], rest])
