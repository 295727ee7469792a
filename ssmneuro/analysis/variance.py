"""Variance of the data explained by the model, per latent dimension, per mode and per discrete state.

For data y_t (N,) with mean ybar and a reconstruction yhat_t,

    VE = 1 - sum_t ||y_t - yhat_t||^2 / sum_t ||y_t - ybar||^2.

* total:          yhat_t = E[y_t | x_t] at the posterior mean latents (model.emission_mean, else C x_t + d)
* per dimension:  latent d alone, yhat_t = ybar + C[:, d] (x_{t,d} - mean_d): what that axis accounts for.
                  Latent axes are correlated, so these do not add up to the total.
* per direction:  a direction v with coordinate c_t = w^T x_t (w: left eigenvector, w^T v = 1), yhat_t =
                  ybar + (C v)(c_t - mean c): e.g. the variance carried by a line attractor's integration mode.
* per state:      the total VE over the bins where state k is the most likely one (deviations from
                  the overall data mean).
"""

from typing import NamedTuple

import numpy as np


class VarianceExplained(NamedTuple):
    """total (), per_dimension (D,), per_state (K,) (NaN for states never most likely), occupancy (K,)
    fraction of bins per state."""

    total: float
    per_dimension: np.ndarray
    per_state: np.ndarray
    occupancy: np.ndarray


def fraction_explained(y, yhat, y_mean=None) -> float:
    """1 - ||y - yhat||^2 / ||y - mean(y)||^2 over all bins and neurons. y, yhat: (T, N)."""
    y, yhat = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    y_mean = y.mean(0) if y_mean is None else y_mean
    total = np.sum((y - y_mean) ** 2)
    if total == 0:
        return np.nan
    return float(1.0 - np.sum((y - yhat) ** 2) / total)


def direction_variance_explained(y, x, emission_weights, direction, left=None) -> float:
    """VE of the rank-one reconstruction along ``direction`` v (D,): coordinate c = x w (w = left, default
    v / ||v||^2), yhat = ybar + (c - cbar) (C v)^T. y (T, N), x (T, D), emission_weights C (N, D)."""
    y, x = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    v = np.asarray(direction, dtype=float)
    w = v / (v @ v) if left is None else np.asarray(left, dtype=float)
    c = x @ w
    yhat = y.mean(0) + np.outer(c - c.mean(), np.asarray(emission_weights) @ v)
    return fraction_explained(y, yhat)


def variance_explained_arrays(y, x, emission_weights, yhat=None, states=None, num_states: int | None = None):
    """VarianceExplained from arrays: y (T, N) data, x (T, D) latents, C (N, D), yhat (T, N) full
    reconstruction (default: ybar + C (x - xbar)), states (T,) int most likely state or None."""
    y, x, C = (np.asarray(a, dtype=float) for a in (y, x, emission_weights))
    if y.ndim != 2 or x.ndim != 2 or y.shape[0] != x.shape[0] or C.shape != (y.shape[1], x.shape[1]):
        raise ValueError(f"need y (T, N), x (T, D), C (N, D); got {y.shape}, {x.shape}, {C.shape}")
    yhat = y.mean(0) + (x - x.mean(0)) @ C.T if yhat is None else np.asarray(yhat, dtype=float)
    per_dim = np.array([direction_variance_explained(y, x, C, e) for e in np.eye(x.shape[1])])
    K = 1 if states is None else (int(np.max(states)) + 1 if num_states is None else num_states)
    states = np.zeros(len(y), int) if states is None else np.asarray(states)
    y_mean = y.mean(0)
    per_state = np.array([fraction_explained(y[states == k], yhat[states == k], y_mean) if np.any(states == k)
                          else np.nan for k in range(K)])
    occupancy = np.bincount(states, minlength=K) / len(states)
    return VarianceExplained(total=fraction_explained(y, yhat), per_dimension=per_dim, per_state=per_state,
                             occupancy=occupancy)


def variance_explained(model, params, data, posterior=None, inputs=None, masks=None) -> VarianceExplained:
    """Variance explained by a fitted model on data (list of (T_i, N) or one array), at the posterior mean
    latents (model.posterior unless ``posterior`` is given), pooled over trials."""
    trials = list(data) if isinstance(data, (list, tuple)) else [data]
    if posterior is None:
        posterior = model.posterior(params, trials, inputs=inputs, masks=masks)
    x = np.concatenate([np.asarray(p.latent_means) for p in posterior])
    states = np.concatenate([np.argmax(np.asarray(p.discrete_probs), axis=1) for p in posterior])
    y = np.concatenate([np.asarray(t) for t in trials])
    yhat = np.concatenate([np.asarray(model.emission_mean(params, p.latent_means)) for p in posterior])
    K = np.asarray(posterior[0].discrete_probs).shape[1]
    return variance_explained_arrays(y, x, params.emissions.weights, yhat=yhat, states=states, num_states=K)
