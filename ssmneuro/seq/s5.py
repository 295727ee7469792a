"""S5: a complex diagonal MIMO state space layer (Smith, Warrington & Linderman, 2023).

Continuous system in the eigenbasis of HiPPO-N (the normal part of HiPPO-LegS):

    dh/dt = Lambda h + B u,   y = Re(C h) + D u,      Lambda (P,), B (P, H), C (H, P) complex

discretised with a learned step delta = exp(log_step) (P,) times an optional per-step interval dt_t:

    ZOH:       lambda_bar = exp(delta Lambda),  B_bar = (lambda_bar - 1) / Lambda * B
    bilinear:  lambda_bar = (1 + delta Lambda / 2) / (1 - delta Lambda / 2),  B_bar = delta / (1 - delta Lambda / 2) * B

then h_t = lambda_bar_t * h_{t-1} + B_bar_t u_t by the diagonal scan. With conjugate symmetry only one of
each conjugate eigenvalue pair is kept (P/2 states) and y = 2 Re(C h) + D u. Bidirectional: a second
scan runs backwards in time with its own C.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.inference.scan import diagonal_scan


def hippo_normal(P):
    """The normal part S = A + p p^T of HiPPO-LegS (P, P): -1/2 on the diagonal, skew-symmetric off it."""
    q = np.sqrt(np.arange(P) + 0.5)
    S = np.tril(-np.outer(q, q), -1) + np.triu(np.outer(q, q), 1)
    return S - 0.5 * np.eye(P)


def hippo_n_eigen(P):
    """Eigen-decomposition of HiPPO-N: Lambda (P,) complex, V (P, P) unitary, S = V diag(Lambda) V^H."""
    S = hippo_normal(P)
    skew = S + 0.5 * np.eye(P)
    w, V = np.linalg.eigh(-1j * skew)  # skew = i * Hermitian
    return -0.5 + 1j * w, V


def discretise_zoh(Lambda, B, delta):
    """lambda_bar = exp(delta Lambda), B_bar = (lambda_bar - 1)/Lambda B.  delta (..., P), B (P, H)."""
    lam = jnp.exp(delta * Lambda)
    return lam, ((lam - 1.0) / Lambda)[..., None] * B


def discretise_bilinear(Lambda, B, delta):
    """lambda_bar = (1 + delta Lambda/2)/(1 - delta Lambda/2), B_bar = delta/(1 - delta Lambda/2) B."""
    denom = 1.0 - 0.5 * delta * Lambda
    return (1.0 + 0.5 * delta * Lambda) / denom, (delta / denom)[..., None] * B


DISCRETISATIONS = {"zoh": discretise_zoh, "bilinear": discretise_bilinear}


def _complex(x):
    return x[..., 0] + 1j * x[..., 1]


class S5(eqx.Module):
    """S5 layer: u (T, H) -> y (T, H)."""

    Lambda_re: jax.Array  # (P',)   P' = P/2 with conjugate symmetry, else P
    Lambda_im: jax.Array  # (P',)
    B: jax.Array  # (P', H, 2) real/imag
    C: jax.Array  # (H, P', 2)  [(2, H, P', 2) when bidirectional]
    D: jax.Array  # (H,)
    log_step: jax.Array  # (P',)
    discretisation: str = eqx.field(static=True)
    conj_sym: bool = eqx.field(static=True)
    bidirectional: bool = eqx.field(static=True)
    parallel: bool = eqx.field(static=True)

    def __init__(self, dim, state_dim=64, discretisation="zoh", conj_sym=True, bidirectional=False,
                 dt_min=1e-3, dt_max=1e-1, parallel=True, *, key):
        if discretisation not in DISCRETISATIONS:
            raise ValueError(f"discretisation must be one of {list(DISCRETISATIONS)}, got {discretisation!r}")
        if conj_sym and state_dim % 2:
            raise ValueError(f"state_dim must be even with conj_sym=True, got {state_dim}")
        Lambda, V = hippo_n_eigen(state_dim)
        if conj_sym:  # eigenvalues come in conjugate pairs (S is real): keep positive imaginary parts
            keep = np.argsort(Lambda.imag)[state_dim // 2 :]
            Lambda, V = Lambda[keep], V[:, keep]
        kB, kC, kD, kS = jax.random.split(key, 4)
        B = jax.random.normal(kB, (state_dim, dim)) / jnp.sqrt(dim)
        n_out = 2 if bidirectional else 1
        C = jax.random.normal(kC, (n_out, dim, state_dim)) / jnp.sqrt(state_dim)
        B_tilde = jnp.asarray(V.conj().T) @ B  # (P', H)
        C_tilde = C @ jnp.asarray(V)  # (n_out, H, P')
        self.Lambda_re = jnp.asarray(Lambda.real, dtype=B.dtype)
        self.Lambda_im = jnp.asarray(Lambda.imag, dtype=B.dtype)
        self.B = jnp.stack([B_tilde.real, B_tilde.imag], -1)
        C_tilde = jnp.stack([C_tilde.real, C_tilde.imag], -1)
        self.C = C_tilde if bidirectional else C_tilde[0]
        self.D = jax.random.normal(kD, (dim,))
        self.log_step = jax.random.uniform(kS, (len(Lambda),), minval=jnp.log(dt_min), maxval=jnp.log(dt_max))
        self.discretisation, self.conj_sym = discretisation, conj_sym
        self.bidirectional, self.parallel = bidirectional, parallel

    @property
    def Lambda(self):
        return self.Lambda_re + 1j * self.Lambda_im

    def discretise(self, intervals=None):
        """lambda_bar (P',) and B_bar (P', H); with intervals (T,): (T, P') and (T, P', H)."""
        delta = jnp.exp(self.log_step)
        if intervals is not None:
            delta = intervals[:, None] * delta
        return DISCRETISATIONS[self.discretisation](self.Lambda, _complex(self.B), delta)

    def project(self, h, C):
        """y = Re(C h) (times 2 under conjugate symmetry): h (T, P'), C (H, P', 2) -> (T, H)."""
        y = jnp.einsum("hp,tp->th", _complex(C), h).real
        return 2.0 * y if self.conj_sym else y

    def __call__(self, u, intervals=None):
        """u (T, H), intervals (T,) optional time steps dt_t (irregular sampling) -> y (T, H)."""
        lam, B_bar = self.discretise(intervals)
        spec = "tph,th->tp" if B_bar.ndim == 3 else "ph,th->tp"
        Bu = jnp.einsum(spec, B_bar, u.astype(B_bar.dtype))
        lam = jnp.broadcast_to(lam, Bu.shape)
        h = diagonal_scan(lam, Bu, parallel=self.parallel)
        if not self.bidirectional:
            return self.project(h, self.C) + self.D * u
        h_back = diagonal_scan(lam, Bu, reverse=True, parallel=self.parallel)
        return self.project(h, self.C[0]) + self.project(h_back, self.C[1]) + self.D * u

    def init_state(self):
        return jnp.zeros(self.Lambda_re.shape, dtype=jnp.result_type(self.Lambda_re, 1j))

    def step(self, state, u, interval=None):
        """One recurrent step (generation): state (P',) complex, u (H,) -> (new state, y (H,))."""
        if self.bidirectional:
            raise ValueError("a bidirectional S5 layer has no recurrent step (it needs the future)")
        lam, B_bar = self.discretise(None if interval is None else jnp.reshape(interval, (1,)))
        lam, B_bar = (lam, B_bar) if interval is None else (lam[0], B_bar[0])
        state = lam * state + B_bar @ u.astype(B_bar.dtype)
        return state, self.project(state[None], self.C)[0] + self.D * u
