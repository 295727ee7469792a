"""Selective (Mamba-style) SSM and its block.

Per channel e = 1..E and state n = 1..Ns, with input-dependent step, B and C:

    delta_t = softplus(W_dt x_t + b_dt)                  (E,)
    a_t     = exp(delta_t A),  A = -exp(A_log)           (E, Ns)   S4D-real init A_log = log(1..Ns)
    h_t     = a_t * h_{t-1} + delta_t B_t x_t            (E, Ns)   (Euler input term, as in Mamba)
    y_t     = h_t C_t + D x_t                            (E,)

The block: (x, z) = in_proj(u); x = silu(mixer(x)) with mixer a causal depthwise convolution (Mamba) or
a nu-Wave SSM (nu-Wave Mamba); y = selective_ssm(x) * silu(z); out = out_proj(y).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ssmneuro.inference.scan import diagonal_scan
from ssmneuro.seq.wave import WaveSSM


def discretise_selective(delta, A, B, x):
    """Zero-order-hold transition and Euler input: a = exp(delta A), b = delta B x.

    delta (..., E), A (E, Ns), B (..., Ns), x (..., E) -> a, b (..., E, Ns).
    """
    a = jnp.exp(delta[..., None] * A)
    b = (delta * x)[..., None] * B[..., None, :]
    return a, b


def project_selective(h, C, D, x):
    """y = h C + D x: h (..., E, Ns), C (..., Ns), D (E,), x (..., E) -> (..., E)."""
    return jnp.sum(h * C[..., None, :], axis=-1) + D * x  # elementwise: tiny batched dots are slow on CPU


def selective_scan_fused(delta, A, B, C, x):
    """The selective recurrence as one ``lax.scan`` that never stores a, b (T, E, Ns): each step forms
    a_t, b_t from delta_t, B_t, x_t, updates h and projects it with C_t, so only (T, E) leaves the loop.

    delta, x (T, E); A (E, Ns); B, C (T, Ns) -> sum_n h_t[e, n] C_t[n], (T, E) (without the D x skip).
    On a CPU a training step is ~1.7x faster than with ``diagonal_scan`` over stored a, b (memory
    traffic, not arithmetic, is the cost there); the associative scan remains for parallel hardware.
    """
    def step(h, inputs):
        delta_t, B_t, C_t, x_t = inputs
        a, b = discretise_selective(delta_t, A, B_t, x_t)
        h = a * h + b
        return h, jnp.sum(h * C_t[..., None, :], axis=-1)

    return jax.lax.scan(step, jnp.zeros(A.shape, jnp.result_type(A, x)), (delta, B, C, x))[1]


def linear(w, b, x):
    """x W^T + b: w (out, in), b (out,) or None."""
    y = x @ w.T
    return y if b is None else y + b


def _uniform(key, shape, fan_in):
    s = 1.0 / jnp.sqrt(fan_in)
    return jax.random.uniform(key, shape, minval=-s, maxval=s)


class SelectiveSSM(eqx.Module):
    """The selective scan over E channels with Ns states each (x (T, E) -> y (T, E))."""

    A_log: jax.Array  # (E, Ns)
    D: jax.Array  # (E,)
    w_dt_in: jax.Array  # (R, E)    low-rank step projection
    w_dt_out: jax.Array  # (E, R)
    b_dt: jax.Array  # (E,)
    w_B: jax.Array  # (Ns, E)
    w_C: jax.Array  # (Ns, E)
    parallel: bool = eqx.field(static=True)

    def __init__(self, dim, state_dim=16, dt_rank=None, dt_min=1e-3, dt_max=1e-1, parallel=True, *, key):
        dt_rank = dt_rank or max(1, -(-dim // 16))
        k = jax.random.split(key, 5)
        self.A_log = jnp.log(jnp.broadcast_to(jnp.arange(1, state_dim + 1, dtype=float), (dim, state_dim)))
        self.D = jnp.ones(dim)
        self.w_dt_in = _uniform(k[0], (dt_rank, dim), dim)
        self.w_dt_out = _uniform(k[1], (dim, dt_rank), dt_rank)
        dt = jnp.exp(jax.random.uniform(k[2], (dim,), minval=jnp.log(dt_min), maxval=jnp.log(dt_max)))
        self.b_dt = dt + jnp.log(-jnp.expm1(-dt))  # softplus^{-1}(dt)
        self.w_B = _uniform(k[3], (state_dim, dim), dim)
        self.w_C = _uniform(k[4], (state_dim, dim), dim)
        self.parallel = parallel

    def selection(self, x):
        """Input-dependent (delta, B, C) for x (..., E): (..., E), (..., Ns), (..., Ns)."""
        delta = jax.nn.softplus(linear(self.w_dt_out, self.b_dt, linear(self.w_dt_in, None, x)))
        return delta, linear(self.w_B, None, x), linear(self.w_C, None, x)

    def __call__(self, x):
        """x (T, E) -> y (T, E)."""
        delta, B, C = self.selection(x)
        A = -jnp.exp(self.A_log)
        if not self.parallel:
            return selective_scan_fused(delta, A, B, C, x) + self.D * x
        a, b = discretise_selective(delta, A, B, x)
        return project_selective(diagonal_scan(a, b), C, self.D, x)

    def init_state(self, dtype=None):
        return jnp.zeros(self.A_log.shape, dtype=dtype or self.A_log.dtype)

    def step(self, state, x):
        """state (E, Ns), x (E,) -> (new state, y (E,))."""
        delta, B, C = self.selection(x)
        a, b = discretise_selective(delta, -jnp.exp(self.A_log), B, x)
        state = a * state + b
        return state, project_selective(state, C, self.D, x)


class CausalConv(eqx.Module):
    """Depthwise causal convolution y_t[d] = sum_{k<W} w[d, k] x_{t-k}[d] + bias[d] (Mamba's short conv)."""

    weight: jax.Array  # (D, W), weight[:, k] multiplies x_{t-k}
    bias: jax.Array  # (D,)

    def __init__(self, dim, width=4, *, key):
        self.weight = _uniform(key, (dim, width), width)
        self.bias = jnp.zeros(dim)

    def __call__(self, x):
        """x (T, D) -> (T, D)."""
        W = self.weight.shape[1]
        padded = jnp.concatenate([jnp.zeros((W - 1, x.shape[1]), x.dtype), x])
        T = x.shape[0]
        return sum(self.weight[:, k] * padded[W - 1 - k : W - 1 - k + T] for k in range(W)) + self.bias

    def init_state(self, dtype=None):
        """The last W inputs, newest first: (D, W)."""
        return jnp.zeros(self.weight.shape, dtype=dtype or self.weight.dtype)

    def step(self, state, x):
        state = jnp.concatenate([x[:, None], state[:, :-1]], axis=1)
        return state, jnp.sum(self.weight * state, axis=1) + self.bias


class MambaBlock(eqx.Module):
    """in_proj -> (mixer -> silu -> selective SSM) * silu(gate) -> out_proj, on u (T, d_model)."""

    in_proj: jax.Array  # (2E, d_model)
    out_proj: jax.Array  # (d_model, E)
    mixer: eqx.Module  # CausalConv or WaveSSM, (T, E) -> (T, E)
    ssm: SelectiveSSM

    def __init__(self, d_model, expand=2, state_dim=16, mixer="conv", conv_width=4, wave_kwargs=None,
                 parallel=True, *, key):
        E = expand * d_model
        k = jax.random.split(key, 4)
        self.in_proj = _uniform(k[0], (2 * E, d_model), d_model)
        self.out_proj = _uniform(k[1], (d_model, E), E)
        if mixer == "conv":
            self.mixer = CausalConv(E, conv_width, key=k[2])
        elif mixer == "wave":
            self.mixer = WaveSSM(E, parallel=parallel, key=k[2], **(wave_kwargs or {}))
        else:
            raise ValueError(f"mixer must be 'conv' or 'wave', got {mixer!r}")
        self.ssm = SelectiveSSM(E, state_dim, parallel=parallel, key=k[3])

    def __call__(self, u):
        """u (T, d_model) -> (T, d_model)."""
        x, z = jnp.split(linear(self.in_proj, None, u), 2, axis=-1)
        x = jax.nn.silu(self.mixer(x))
        return linear(self.out_proj, None, self.ssm(x) * jax.nn.silu(z))

    def init_state(self, dtype=None):
        return self.mixer.init_state(dtype), self.ssm.init_state(dtype)

    def step(self, state, u):
        """state (mixer state, ssm state), u (d_model,) -> (new state, y (d_model,))."""
        x, z = jnp.split(linear(self.in_proj, None, u), 2, axis=-1)
        mix_state, x = self.mixer.step(state[0], x)
        ssm_state, y = self.ssm.step(state[1], jax.nn.silu(x))
        return (mix_state, ssm_state), linear(self.out_proj, None, y * jax.nn.silu(z))
