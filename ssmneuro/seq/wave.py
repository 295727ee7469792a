"""Shift-SSM and nu-Wave SSM: the upwind one-way wave equation on N cells.

Keller (COSYNE 2025): the shift-SSM of H3 and the short causal convolution of Mamba are the upwind
discretisation of dh/dt = -nu dh/dx at velocity nu = 1. On N cells with a zero inflow boundary,

    h_t = M(nu_t) h_{t-1} + e_1 u_t,        M(nu) = (1 - nu) I + nu S,

with S the down-shift ((S h)_i = h_{i-1}, (S h)_1 = 0) and nu in (0, 1] (the CFL-stable range); nu = 1 is
an exact shift register h_t = (u_t, u_{t-1}, ..., u_{t-N+1}). M is a single Jordan block (not
diagonalisable), but every such matrix is a polynomial in S truncated at degree N - 1: M = p(S) with
p = (1 - nu, nu, 0, ...). Lower-triangular Toeplitz matrices commute and compose by truncated polynomial
multiplication, so the recurrence runs in an associative scan over (coefficients (N,), state (N,)) pairs
at O(N^2) work per combine instead of O(N^3) for a dense scan.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

# ---------------------------------------------------------------- the scan over polynomials in S


def lower_toeplitz(p):
    """p(S) as a matrix: T[i, j] = p[i - j] for i >= j, else 0. p (..., N) -> (..., N, N)."""
    N = p.shape[-1]
    lag = jnp.arange(N)[:, None] - jnp.arange(N)[None, :]
    return jnp.where(lag >= 0, p[..., jnp.clip(lag, 0)], 0.0)


def truncated_polymul(p, q):
    """c = p(S) q, i.e. c_k = sum_{m <= k} p_m q_{k-m} (polynomial product truncated at N terms).

    One gather and one broadcast product (few ops, so the associative scan's graph stays small).
    Args: p (..., N), q (..., N) broadcastable. Returns (..., N).
    """
    return jnp.sum(lower_toeplitz(p) * q[..., None, :], axis=-1)


def _toeplitz_combine(earlier, later):
    """Compose h -> p(S) h + b maps (earlier applied first); both remain polynomials in S."""
    p_i, b_i = earlier
    p_j, b_j = later
    return truncated_polymul(p_j, p_i), truncated_polymul(p_j, b_i) + b_j


def toeplitz_scan(coeffs, b, initial_state=None, parallel=True):
    """Solve h_t = p_t(S) h_{t-1} + b_t, p_t(S) the lower-triangular Toeplitz matrix with first column p_t.

    Args:
        coeffs: (T, ..., N) or (..., N) polynomial coefficients p_t (broadcast against ``b``).
        b: (T, ..., N) inputs.
        initial_state: (..., N) h_0, zero when None.
        parallel: associative scan (True) or sequential ``lax.scan`` (False).

    Returns:
        h: (T, ..., N) the states h_1..h_T.
    """
    coeffs = jnp.broadcast_to(coeffs, jnp.broadcast_shapes(jnp.shape(coeffs), b.shape))
    b = b.astype(jnp.result_type(coeffs, b))
    if initial_state is not None:
        b = b.at[0].add(truncated_polymul(coeffs[0], initial_state))
    if parallel:
        _, h = jax.lax.associative_scan(_toeplitz_combine, (coeffs, b))
        return h

    def step(h, pb):
        h = truncated_polymul(pb[0], h) + pb[1]
        return h, h

    _, h = jax.lax.scan(step, jnp.zeros_like(b[0]), (coeffs, b))
    return h


# ---------------------------------------------------------------- the wave equations' pieces


def wave_coefficients(nu, num_cells):
    """Coefficients of M(nu) = (1 - nu) I + nu S as a polynomial in S: (1 - nu, nu, 0, ..., 0).

    Args: nu (...) velocities; num_cells N >= 1. Returns (..., N).
    """
    p = jnp.zeros(jnp.shape(nu) + (num_cells,), dtype=jnp.result_type(nu, float))
    p = p.at[..., 0].set(1.0 - nu)
    return p.at[..., 1].set(nu) if num_cells > 1 else p


def inflow(u, num_cells):
    """e_1 u: the input enters the first cell. u (...) -> (..., N)."""
    return jnp.zeros(jnp.shape(u) + (num_cells,), dtype=u.dtype).at[..., 0].set(u)


def velocity(nu_logit):
    """nu = sigmoid(logit), in (0, 1)."""
    return jax.nn.sigmoid(nu_logit)


def velocity_logit(nu):
    """Inverse of ``velocity``."""
    return jnp.log(nu) - jnp.log1p(-nu)


def wave_transition(nu, h):
    """M(nu) h = (1 - nu) h + nu S h: nu (...), h (..., N) -> (..., N). The two-term form of one step."""
    shifted = jnp.concatenate([jnp.zeros_like(h[..., :1]), h[..., :-1]], axis=-1)
    return (1.0 - nu)[..., None] * h + nu[..., None] * shifted


def wave_recurrence(nu, b):
    """Sequential h_t = M(nu_t) h_{t-1} + b_t with the two-term step: nu (T, ...) or (...), b (T, ..., N)."""
    nu = jnp.broadcast_to(nu, b.shape[:-1])

    def step(h, nb):
        h = wave_transition(nb[0], h) + nb[1]
        return h, h

    return jax.lax.scan(step, jnp.zeros_like(b[0]), (nu, b))[1]


def binomial_pulses(nu, num_cells, length):
    """The wave's impulse responses in closed form: P[k, ..., i] = (M(nu)^k e_1)_i = C(k, i) nu^i (1 - nu)^(k - i)
    (zero for i > k), a binomial pulse moving at speed nu. nu (...) in (0, 1] -> (length, ..., N).

    Computed in log space, log C(k, i) = sum_{j < i} log(k - j) - log i!, so that k up to 10^5 costs no
    sequential loop (the pulses of all lags at once) and no cancellation of large log-factorials.
    """
    dtype = jnp.result_type(nu, float)
    k = jnp.arange(length, dtype=dtype).reshape((length,) + (1,) * jnp.ndim(nu) + (1,))
    i = jnp.arange(num_cells, dtype=dtype)
    log_falling = jnp.cumsum(jnp.log(jnp.maximum(k - i + 1.0, 1.0)), axis=-1) - jnp.log(k + 1.0)
    log_binom = log_falling - gammaln(i + 1.0)
    nu = jnp.asarray(nu, dtype)[..., None]
    lag = k - i
    safe_nu = jnp.where(nu < 1.0, nu, 0.5)  # no log(0) at nu = 1 (handled below), so gradients stay finite
    log_stay = jnp.where(lag > 0, lag * jnp.log1p(-safe_nu), 0.0)
    pulse = jnp.exp(log_binom + i * jnp.log(nu) + log_stay)
    at_one = (lag == 0).astype(dtype)  # nu = 1: the exact shift register
    return jnp.where(lag < 0, 0.0, jnp.where(nu < 1.0, pulse, at_one))


def wave_kernel(nu, readout, length):
    """Impulse response of a time-invariant wave SSM read out by w: K_k = <w, M(nu)^k e_1>, k < length.
    nu (D, V), readout w (D, V, N) -> K (length, D) summed over V (``binomial_pulses``: no sequential loop).
    """
    return jnp.einsum("kdvn,dvn->kd", binomial_pulses(nu, readout.shape[-1], length), readout)


def causal_convolution(u, kernel):
    """y_t = sum_{k <= t} K_k u_{t-k}: u (T, D), K (T, D) -> (T, D); for short T one contraction with each
    channel's lower-triangular Toeplitz matrix [K_{t-s}] (D, T, T) (a batched matrix product), FFT for long T."""
    T = u.shape[0]
    if T <= 128:
        return jnp.einsum("dts,sd->td", lower_toeplitz(kernel.T), u)
    n = 2 * T
    return jnp.fft.irfft(jnp.fft.rfft(u, n, axis=0) * jnp.fft.rfft(kernel, n, axis=0), n, axis=0)[:T]


# ---------------------------------------------------------------- the layer

NU_MODES = ("fixed", "channel", "input")


class WaveSSM(eqx.Module):
    """Depthwise nu-Wave SSM: each of D channels drives V waves on N cells, read out linearly.

        h_t[d, v] = M(nu_t[d, v]) h_{t-1}[d, v] + e_1 u_t[d]          (D, V, N)
        y_t[d]    = sum_{v, i} w[d, v, i] h_t[d, v, i] + bias[d]

    ``mode``: "fixed" (nu = ``fixed_nu``, not learned; nu = 1 is the shift-SSM and the readout is then a
    causal depthwise convolution of width N), "channel" (nu = sigmoid(logit[d, v]) learned),
    "input" (nu_t = sigmoid(logit[d, v] + (W u_t)[d, v]), input-dependent).
    """

    readout: jax.Array  # (D, V, N)
    bias: jax.Array  # (D,)
    nu_logit: jax.Array  # (D, V)
    nu_proj: jax.Array | None  # (D, V, D) for mode "input"
    mode: str = eqx.field(static=True)
    fixed_nu: float = eqx.field(static=True)
    num_cells: int = eqx.field(static=True)
    parallel: bool = eqx.field(static=True)

    def __init__(self, dim, num_cells=8, num_velocities=1, mode="channel", nu_init=0.5,
                 fixed_nu=1.0, parallel=True, *, key):
        """nu_init: a float, or "spread" (velocities evenly in [0.2, 0.95] over the V waves and channels)."""
        if mode not in NU_MODES:
            raise ValueError(f"mode must be one of {NU_MODES}, got {mode!r}")
        if not 0.0 < fixed_nu <= 1.0:
            raise ValueError(f"fixed_nu must lie in (0, 1] (CFL stability), got {fixed_nu}")
        k_w, k_p = jax.random.split(key)
        scale = 1.0 / jnp.sqrt(num_cells * num_velocities)
        self.readout = jax.random.uniform(k_w, (dim, num_velocities, num_cells), minval=-scale, maxval=scale)
        self.bias = jnp.zeros(dim)
        if nu_init == "spread":
            nu0 = jnp.linspace(0.2, 0.95, dim * num_velocities).reshape(num_velocities, dim).T
        else:
            if not 0.0 < float(nu_init) < 1.0:
                raise ValueError(f"nu_init must lie in (0, 1) or be 'spread', got {nu_init}")
            nu0 = jnp.full((dim, num_velocities), float(nu_init), dtype=float)  # not weakly typed: see test_model
        self.nu_logit = velocity_logit(nu0)
        self.nu_proj = (jax.random.normal(k_p, (dim, num_velocities, dim)) * 0.02) if mode == "input" else None
        self.mode, self.fixed_nu, self.num_cells, self.parallel = mode, float(fixed_nu), num_cells, parallel

    def velocities(self, u):
        """nu: (D, V) for "fixed"/"channel", (T, D, V) for "input" (u (T, D))."""
        if self.mode == "fixed":
            return jnp.full(self.nu_logit.shape, self.fixed_nu, dtype=self.nu_logit.dtype)
        if self.mode == "channel":
            return velocity(self.nu_logit)
        return velocity(self.nu_logit + jnp.einsum("dvk,...k->...dv", self.nu_proj, u))

    def hidden_states(self, u):
        """The waves h: (T, D, V, N) for inputs u (T, D)."""
        coeffs = wave_coefficients(self.velocities(u), self.num_cells)
        b = inflow(jnp.broadcast_to(u[:, :, None], u.shape + (self.readout.shape[1],)), self.num_cells)
        if not self.parallel:
            return wave_recurrence(self.velocities(u), b)
        return toeplitz_scan(coeffs, b)

    def read_out(self, h):
        """y = <w, h> + bias over velocities and cells: (..., D, V, N) -> (..., D)."""
        return jnp.einsum("...dvn,dvn->...d", h, self.readout) + self.bias

    def __call__(self, u):
        """u (T, D) -> y (T, D). A time-invariant nu runs as a convolution with the wave's kernel (no
        per-example state is materialised); an input-dependent nu runs the polynomial scan."""
        if self.mode == "input":
            return self.read_out(self.hidden_states(u))
        kernel = wave_kernel(self.velocities(u), self.readout, u.shape[0])
        return causal_convolution(u, kernel) + self.bias

    def init_state(self, dtype=None):
        return jnp.zeros(self.readout.shape, dtype=dtype or self.readout.dtype)

    def step(self, state, u):
        """One recurrent step: state (D, V, N), u (D,) -> (new state, y (D,))."""
        state = wave_transition(self.velocities(u), state) + inflow(jnp.broadcast_to(u[:, None], state.shape[:2]), self.num_cells)
        return state, self.read_out(state)
