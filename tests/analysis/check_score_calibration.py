"""Coverage of the 90% score interval over seeds (not collected by pytest; run by hand, ~5 min):

    .venv/bin/python tests/analysis/check_score_calibration.py

Line attractor (0.999, 0.9, 0.85), dt = 0.1 s, 20 trials x 100 bins, 30 neurons; the dynamics posterior
is computed from the true latents and from Kalman-smoothed latents of the known model.
"""

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.analysis.dynamics_posterior import latent_stats, posterior_stats, sample_dynamics
from ssmneuro.analysis.score import summarize_scores
from ssmneuro.analysis.toy_systems import SwitchingLinear, line_attractor_dynamics, simulate_switching
from ssmneuro.inference.lgssm import LGSSMParams, kalman_smoother

DT, D, N, TRIALS, T = 0.1, 3, 30, 20, 100
TRUE = float(np.log2(np.log(0.9) / np.log(0.999)))


class _Posterior:
    def __init__(self, means, covs, cross):
        self.latent_means, self.latent_covs, self.latent_cross_covs = means, covs, cross
        self.discrete_probs = np.ones((means.shape[0], 1))


def run(seed, smoothed):
    A, _, _ = line_attractor_dynamics(jax.random.PRNGKey(100), D)
    system = SwitchingLinear(A[None], np.zeros((1, D)), np.zeros((1, D)), np.zeros(1))
    C = np.asarray(jax.random.normal(jax.random.PRNGKey(101), (N, D)))
    _, x, y = simulate_switching(jax.random.PRNGKey(seed), system, C, np.zeros(N), T, 0.1, 0.5, num_trials=TRIALS)
    if smoothed:
        p = LGSSMParams(jnp.zeros(D), jnp.eye(D), jnp.asarray(A), jnp.zeros(D), 0.01 * jnp.eye(D), jnp.asarray(C),
                        jnp.zeros(N), 0.25 * jnp.ones(N))
        s = jax.jit(jax.vmap(lambda yy: kalman_smoother(p, yy)))(jnp.asarray(y))
        stats = posterior_stats([_Posterior(s.smoothed_means[i], s.smoothed_covs[i], s.smoothed_cross_covs[i])
                                 for i in range(TRIALS)])
    else:
        stats = latent_stats(list(x))
    return summarize_scores(A, DT, sample_dynamics(jax.random.PRNGKey(seed + 1), stats, 1000).weights)


if __name__ == "__main__":
    with jax.enable_x64(True):
        for smoothed in (False, True):
            res = [run(seed, smoothed) for seed in range(40)]
            covered = sum(r.interval[0] <= TRUE <= r.interval[1] for r in res)
            print(f"{'smoothed' if smoothed else 'true'} latents: 90% interval covers {TRUE:.2f} in {covered}/40 seeds; "
                  f"min P(score > 1) = {min(r.prob_above_1 for r in res):.3f}")
