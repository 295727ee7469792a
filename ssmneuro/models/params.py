"""Parameter and result types shared by LDS, SLDS and RSLDS.

K discrete states, D latent dimensions, N emission dimensions, U input dimensions.
"""

from typing import Any, NamedTuple

import numpy as np
from jax import Array


class InitialParams(NamedTuple):
    """p(z_0 = k) = probs[k];  p(x_0 | z_0 = k) = N(means[k], covs[k]).

    probs: (K,)   means: (K, D)   covs: (K, D, D)
    """

    probs: Array
    means: Array
    covs: Array


class DynamicsParams(NamedTuple):
    """x_{t+1} | z_{t+1} = k  ~  N(weights[k] x_t + input_weights[k] u_t + biases[k], covs[k]).

    weights: (K, D, D)   input_weights: (K, D, U)   biases: (K, D)   covs: (K, D, D)
    """

    weights: Array
    input_weights: Array
    biases: Array
    covs: Array


class SLDSParams(NamedTuple):
    """All parameters of a (recurrent) switching LDS.

    initial: InitialParams; transitions: a family NamedTuple (components/transitions.py);
    dynamics: DynamicsParams; emissions: a family NamedTuple (components/emissions/).
    """

    initial: InitialParams
    transitions: Any
    dynamics: DynamicsParams
    emissions: Any


class Posterior(NamedTuple):
    """Per-trial posterior q(z) q(x) (exact p(x | y) for a Gaussian LDS).

    discrete_probs: (T, K) q(z_t = k)
    latent_means: (T, D) E[x_t]
    latent_covs: (T, D, D) Cov[x_t]
    latent_cross_covs: (T-1, D, D) Cov[x_{t+1}, x_t]
    expected_transitions: (T-1, K, K) q(z_t = i, z_{t+1} = j)
    """

    discrete_probs: Array
    latent_means: Array
    latent_covs: Array
    latent_cross_covs: Array
    expected_transitions: Array


class FitResult(NamedTuple):
    """What ``model.fit`` returns.

    params: the best parameters seen (highest ELBO / log-likelihood);
    posterior: list of per-trial Posterior under ``params``;
    elbos: (iterations run,) ELBO (exact log-likelihood for the Gaussian LDS) at each iteration (fewer
        than num_iters when fit(tol=...) stopped early);
    rejected: iterations whose result was rejected (NaN or a large drop) and rolled back;
    best_iteration: index into ``elbos`` of the kept parameters;
    all_elbos: (num_fits, num_iters) the ELBO traces of every seeded fit (``fit(num_fits=...)``);
    kept_fit: which of them was kept (the highest ELBO).
    """

    params: SLDSParams
    posterior: list
    elbos: np.ndarray
    rejected: list
    best_iteration: int
    all_elbos: np.ndarray | None = None
    kept_fit: int = 0
