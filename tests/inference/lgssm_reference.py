"""Independent references for the LGSSM tests: random problems and the dense joint Gaussian (float64 numpy)."""

import numpy as np
from scipy.stats import multivariate_normal

from ssmneuro.inference.lgssm import LGSSMParams


def random_cov(rng, n, scale=1.0):
    A = rng.normal(size=(n, n))
    return scale * (A @ A.T / n + 0.5 * np.eye(n))


def random_dynamics(rng, D):
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    return 0.95 * Q


def random_problem(seed, T=6, D=2, N=3, U=0, time_varying=False, diagonal=False, mask_frac=0.0):
    """Returns (params of numpy arrays, emissions (T,N), inputs (T,U) or None, mask (T,N) or None)."""
    rng = np.random.default_rng(seed)
    tv = lambda f, *a: np.stack([f(*a) for _ in range(T - 1)]) if time_varying else f(*a)
    tvT = lambda f, *a: np.stack([f(*a) for _ in range(T)]) if time_varying else f(*a)
    R = tvT(lambda: rng.uniform(0.3, 1.5, N)) if diagonal else tvT(random_cov, rng, N, 0.7)
    params = LGSSMParams(
        initial_mean=rng.normal(size=D), initial_cov=random_cov(rng, D),
        dynamics_matrix=tv(random_dynamics, rng, D), dynamics_bias=tv(rng.normal, 0, 0.3, D),
        dynamics_cov=tv(random_cov, rng, D, 0.3),
        emission_matrix=tvT(rng.normal, 0, 1, (N, D)), emission_bias=tvT(rng.normal, 0, 1, N),
        emission_cov=R,
        dynamics_input_matrix=tv(rng.normal, 0, 1, (D, U)) if U else None,
        emission_input_matrix=tvT(rng.normal, 0, 1, (N, U)) if U else None)
    inputs = rng.normal(size=(T, U)) if U else None
    emissions = rng.normal(size=(T, N)) * 2
    mask = rng.uniform(size=(T, N)) > mask_frac if mask_frac else None
    return params, emissions, inputs, mask


def _step(x, t, static_ndim):
    return x if x.ndim == static_ndim else x[t]


def dense_posterior(params, emissions, inputs=None, mask=None, upto=None):
    """Condition the joint Gaussian of (x_{1:T}, y_{1:T}) on the observed y_t, t < upto (all when None).

    Returns (log p(y_obs), mean (T,D), cov (TD, TD)).
    """
    p = params
    T, N = emissions.shape
    D = p.initial_mean.shape[0]
    upto = T if upto is None else upto
    F = [_step(p.dynamics_matrix, t, 2) for t in range(T - 1)]
    u = [_step(p.dynamics_bias, t, 1) + (0 if inputs is None else _step(p.dynamics_input_matrix, t, 2) @ inputs[t])
         for t in range(T - 1)]
    Q = [_step(p.dynamics_cov, t, 2) for t in range(T - 1)]
    C = [_step(p.emission_matrix, t, 2) for t in range(T)]
    d = [_step(p.emission_bias, t, 1) + (0 if inputs is None else _step(p.emission_input_matrix, t, 2) @ inputs[t])
         for t in range(T)]
    Rs = p.emission_cov
    diag = Rs.ndim == 1 or (Rs.ndim == 2 and Rs.shape != (N, N))
    R = [np.diag(_step(Rs, t, 1)) if diag else _step(Rs, t, 2) for t in range(T)]
    mean = [p.initial_mean]
    for t in range(T - 1):
        mean.append(F[t] @ mean[-1] + u[t])
    mean = np.concatenate(mean)
    G = np.zeros((T * D, T * D))  # x = mean + G e, e ~ N(0, blockdiag(S0, Q_1..))
    for t in range(T):
        G[t * D:(t + 1) * D, t * D:(t + 1) * D] = np.eye(D)
        for s in range(t - 1, -1, -1):
            G[t * D:(t + 1) * D, s * D:(s + 1) * D] = G[t * D:(t + 1) * D, (s + 1) * D:(s + 2) * D] @ F[s]
    noise = np.zeros((T * D, T * D))
    for t, S in enumerate([p.initial_cov] + Q):
        noise[t * D:(t + 1) * D, t * D:(t + 1) * D] = S
    cov_x = G @ noise @ G.T
    Cbig = np.zeros((T * N, T * D))
    Rbig = np.zeros((T * N, T * N))
    for t in range(T):
        Cbig[t * N:(t + 1) * N, t * D:(t + 1) * D] = C[t]
        Rbig[t * N:(t + 1) * N, t * N:(t + 1) * N] = R[t]
    obs = np.ones((T, N), bool) if mask is None else np.asarray(mask, bool).copy()
    obs[upto:] = False
    obs = obs.reshape(-1)
    mu_y = (Cbig @ mean + np.concatenate(d))[obs]
    S = (Cbig @ cov_x @ Cbig.T + Rbig)[np.ix_(obs, obs)]
    cov_xy = (cov_x @ Cbig.T)[:, obs]
    y = emissions.reshape(-1)[obs]
    if obs.sum() == 0:
        return 0.0, mean.reshape(T, D), cov_x
    K = np.linalg.solve(S, cov_xy.T).T
    post_mean = mean + K @ (y - mu_y)
    post_cov = cov_x - K @ cov_xy.T
    log_lik = multivariate_normal(mu_y, S).logpdf(y)
    return log_lik, post_mean.reshape(T, D), post_cov


def dense_smoother(params, emissions, inputs=None, mask=None):
    """dict with log_likelihood, filtered/smoothed means and covs, smoothed cross covs Cov(x_{t+1}, x_t)."""
    T = emissions.shape[0]
    D = params.initial_mean.shape[0]
    ll, m, P = dense_posterior(params, emissions, inputs, mask)
    blk = lambda M, t, s: M[t * D:(t + 1) * D, s * D:(s + 1) * D]
    fm, fc = [], []
    for t in range(T):
        _, mt, Pt = dense_posterior(params, emissions, inputs, mask, upto=t + 1)
        fm.append(mt[t])
        fc.append(blk(Pt, t, t))
    return dict(log_likelihood=ll, smoothed_means=m, smoothed_covs=np.stack([blk(P, t, t) for t in range(T)]),
                smoothed_cross_covs=np.stack([blk(P, t + 1, t) for t in range(T - 1)]),
                filtered_means=np.stack(fm), filtered_covs=np.stack(fc))
