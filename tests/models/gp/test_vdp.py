"""GP-SDE (RBF) on a Van der Pol oscillator seen through spikes: the ELBO climbs, the limit cycle and the
unstable focus are recovered. A smaller version of ``benchmarks/gpslds.py --vdp`` (dt = 10 ms, 6 trials)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.analysis.gp_attractors import limit_cycle, sample_fixed_points
from ssmneuro.models.gp import GPSDE
from ssmneuro.models.gp.simulate import van_der_pol_benchmark


def to_true(points, W):
    """Learned latents (P, D) -> true coordinates with the affine map W (D + 1, D): [x, 1] W."""
    return np.c_[points, np.ones(len(points))] @ W


@pytest.mark.slow
def test_rbf_gpsde_recovers_the_van_der_pol_cycle_and_its_unstable_focus():
    dt = 1e-2
    # half the trials start within radius 1 of the focus: paths leave it within ~1 s, so the other trials
    # (started on or outside the cycle) never inform the drift there
    data = van_der_pol_benchmark(jax.random.PRNGKey(3), num_trials=6, num_near_focus=3, dt=dt)
    model = GPSDE(2, kernel="rbf", emissions="point_process", dt=dt, num_inducing=5, init_latent_scale=3.0)
    res = model.fit(np.asarray(data["spikes"]), key=jax.random.PRNGKey(4), num_iters=25, num_mstep_iters=10,
                    learning_rate=0.05)

    # the ELBO climbs every iteration (up to float32 rounding)
    elbos = res.elbos
    assert not res.rejected and elbos[-1] > elbos[0] + 100.0, elbos
    assert np.all(np.diff(elbos) > -1e-5 * np.abs(elbos[1:])), elbos

    # affine alignment of the learned latents to the true ones
    X = np.concatenate([p.latent_means for p in res.posterior])
    xs = np.asarray(data["latents"]).reshape(-1, 2)
    W = np.linalg.lstsq(np.c_[X, np.ones(len(X))], xs, rcond=None)[0]
    r2 = 1 - ((to_true(X, W) - xs) ** 2).sum() / ((xs - xs.mean(0)) ** 2).sum()
    assert r2 > 0.95, r2

    # the focus: the mean drift's fixed point nearest the true origin. Its eigenvalues are invariant under
    # the affine map (J_true = W^T J W^-T); the truth is 2 +- 3.46i.
    fps = sample_fixed_points(model, res.params, jax.random.PRNGKey(0), X[::40], use_mean=True)
    points = to_true(fps.points[0], W)
    i = int(np.argmin(np.linalg.norm(points, axis=1)))
    eigs = fps.eigenvalues[0][i]
    assert np.linalg.norm(points[i]) < 1.0, points[i]
    assert fps.kind[0][i] == "unstable" and np.all(eigs.real > 0.5), eigs
    assert np.all(np.abs(np.abs(eigs.imag) - 2 * np.sqrt(3)) < 1.5), eigs

    # the limit cycle, followed from the end of the first trial: period and amplitude (half range per axis)
    cycle, period = limit_cycle(model.drift_function(res.params), res.posterior[0].latent_means[-1], dt, 12.0)
    true_cycle, true_period = limit_cycle(data["drift"], jnp.array([0.1, 0.1]), dt, 12.0)
    amp, true_amp = np.ptp(to_true(cycle, W), 0) / 2, np.ptp(true_cycle, 0) / 2
    assert abs(period / true_period - 1) < 0.05, (period, true_period)
    assert np.all(np.abs(amp / true_amp - 1) < 0.15), (amp, true_amp)
