"""GP-SLDS / GP-SDE benchmarks: speed of variational EM and recovery on the synthetic systems.

    python benchmarks/gpslds.py [--quick]            seconds per EM iteration (scaling in trials, inducing points)
    python benchmarks/gpslds.py --recovery [--quick] Hu et al.'s two-regime benchmark (30 trials, 50 neurons,
                                                     dt = 1 ms, 2.5 s): R^2, fixed points, boundary after alignment
    python benchmarks/gpslds.py --vdp [--quick]      GP-SDE (RBF) on a Van der Pol oscillator seen through spikes

Prints markdown tables and merges the numbers into benchmarks/results/gpslds.json.
Timings on a shared CPU are noisy: every row of a table is measured in the same run and reported as a
ratio to the first row.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.analysis.gp_attractors import sample_fixed_points
from ssmneuro.models.gp import GPSDE, GPSLDS
from ssmneuro.models.gp.simulate import (
    euler_maruyama,
    spikes_from_latents,
    two_regime_benchmark,
    van_der_pol_drift,
)

RESULTS = Path(__file__).resolve().parent / "results" / "gpslds.json"


def save(section, payload):
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = payload
    data["machine"] = f"{platform.processor() or platform.machine()}, jax {jax.__version__}, {jax.devices()[0].platform}"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2))


def affine_alignment(model_latents, true_latents):
    """Least-squares x_true = [x_model, 1] W -> (W (D+1, D), R^2)."""
    X = np.c_[model_latents, np.ones(len(model_latents))]
    W = np.linalg.lstsq(X, true_latents, rcond=None)[0]
    pred = X @ W
    r2 = 1 - ((true_latents - pred) ** 2).sum() / ((true_latents - true_latents.mean(0)) ** 2).sum()
    return W, float(r2)


def to_true(points, W):
    return np.c_[np.atleast_2d(points), np.ones(len(np.atleast_2d(points)))] @ W


def two_regime_metrics(model, res, latents):
    """R^2, per-regime fixed points, fixed points of the mean drift and the boundary, all in true coordinates."""
    X = np.concatenate([p.latent_means for p in res.posterior])
    W, r2 = affine_alignment(X, latents.reshape(-1, 2))
    A, b = model.regime_dynamics(res.params)
    regime_fps = to_true(np.stack([np.linalg.solve(np.asarray(A[j]), -np.asarray(b[j])) for j in range(len(A))]), W)
    targets = np.array([[-3.0, 0.0], [3.0, 0.0]])
    regime_err = [float(np.min(np.linalg.norm(targets - fp, axis=1))) for fp in regime_fps]
    lo, hi = X.min(0), X.max(0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 7), np.linspace(lo[1], hi[1], 7)), -1).reshape(-1, 2)
    fps = sample_fixed_points(model, res.params, jax.random.PRNGKey(0), grid, use_mean=True)
    mean_fps = to_true(fps.points[0], W) if len(fps.points[0]) else np.zeros((0, 2))
    mean_err = [float(np.min(np.linalg.norm(mean_fps - t, axis=1))) if len(mean_fps) else np.inf for t in targets]
    # boundary {x : w0 + w^T x = 0} (pi = 1/2) mapped to true coordinates, over true x2 in [-4, 4]
    wb = np.asarray(res.params.kernel.boundary_weights)[:, 0]
    direction = np.array([-wb[2], wb[1]]) / np.linalg.norm(wb[1:])
    base = -wb[0] * wb[1:] / np.sum(wb[1:] ** 2)
    line = to_true(base + np.linspace(-50, 50, 2001)[:, None] * direction, W)
    seg = line[np.abs(line[:, 1]) <= 4.0]
    boundary_err = float(np.max(np.abs(seg[:, 0]))) if len(seg) else np.inf
    return dict(latent_r2=r2, regime_fixed_points=regime_fps.tolist(), regime_fixed_point_errors=regime_err,
                mean_drift_fixed_points=mean_fps.tolist(), mean_drift_fixed_point_errors=mean_err,
                mean_drift_fixed_point_kinds=[str(k) for k in fps.kind[0]],
                boundary_max_abs_x1=boundary_err)


def recovery(quick):
    num_trials, num_iters = (6, 10) if quick else (30, 30)
    data = two_regime_benchmark(jax.random.PRNGKey(0), num_trials=num_trials)
    latents = np.asarray(data["latents"])
    model = GPSLDS(2, 2, emissions="point_process", link="softplus", dt=1e-3, init_latent_scale=3.0,
                   emission_quadrature_points=4)
    log = []

    def callback(it, params, elbo):
        log.append(time.time())

    t0 = time.time()
    res = model.fit(np.asarray(data["spikes"]), key=jax.random.PRNGKey(1), num_iters=num_iters, num_estep_iters=1,
                    num_mstep_iters=5, learning_rate=0.1, damping=0.9, verbose=True, callback=callback)
    seconds = time.time() - t0
    import pickle, tempfile

    dump = Path(tempfile.gettempdir()) / f"gpslds_recovery_{num_trials}.pkl"
    dump.write_bytes(pickle.dumps(dict(params=jax.device_get(res.params), posterior=res.posterior,
                                       elbos=res.elbos, latents=latents)))
    metrics = two_regime_metrics(model, res, latents)
    metrics.update(num_trials=num_trials, num_iters=num_iters, fit_seconds=seconds,
                   seconds_per_iteration_after_compile=float(np.median(np.diff(log))) if len(log) > 2 else None,
                   elbo_first=float(res.elbos[0]),
                   elbo_last=float(res.elbos[-1]), rejected=len(res.rejected))
    print("\n| metric | value | target |\n|---|---|---|")
    print(f"| latent R^2 (affine) | {metrics['latent_r2']:.4f} | >= 0.9 |")
    for fp, e in zip(metrics["regime_fixed_points"], metrics["regime_fixed_point_errors"]):
        print(f"| regime fixed point | ({fp[0]:.2f}, {fp[1]:.2f}), error {e:.3f} | < 0.5 of (+-3, 0) |")
    for fp, e in zip(metrics["mean_drift_fixed_points"], metrics["mean_drift_fixed_point_errors"]):
        print(f"| mean-drift fixed point | ({fp[0]:.2f}, {fp[1]:.2f}) | |")
    print(f"| mean-drift fixed point errors | {metrics['mean_drift_fixed_point_errors']} | < 0.5 |")
    print(f"| boundary max abs x1 (true x2 in [-4, 4]) | {metrics['boundary_max_abs_x1']:.3f} | < 0.5 |")
    print(f"| ELBO first -> last | {metrics['elbo_first']:.1f} -> {metrics['elbo_last']:.1f} | increases |")
    print(f"| fit time | {seconds:.0f} s for {num_iters} iterations | |")
    save("recovery_quick" if quick else "recovery", metrics)
    return metrics


def vdp_data(key, num_trials, duration, dt, num_neurons, scale=3.0):
    """Van der Pol latents scaled by `scale` (amplitude ~2 scale), softplus spikes."""
    drift = lambda x: scale * van_der_pol_drift(x / scale, mu=1.0, speed=4.0)
    T = int(round(duration / dt))
    k0, kx, kc, ks = jax.random.split(key, 4)
    x0 = jax.random.uniform(k0, (num_trials, 2), minval=-2 * scale, maxval=2 * scale)
    xs = jax.vmap(lambda k, x: euler_maruyama(k, drift, x, T, dt))(jax.random.split(kx, num_trials), x0)
    C = jax.random.normal(kc, (num_neurons, 2)) * 0.6
    d = jnp.full(num_neurons, 3.0)
    y = jax.vmap(lambda k, x: spikes_from_latents(k, x, C, d, dt))(jax.random.split(ks, num_trials), xs)
    return xs, y, drift


def limit_cycle_amplitude(f, x0, dt, num_steps):
    """Integrate dx = f(x) dt deterministically; -> (max |x| per dim over the last half, period estimate)."""
    xs = euler_maruyama(jax.random.PRNGKey(0), f, jnp.asarray(x0), num_steps, dt, diffusion=0.0)
    tail = np.asarray(xs[num_steps // 2 :])
    c = tail - tail.mean(0)
    ups = np.flatnonzero((c[:-1, 0] < 0) & (c[1:, 0] >= 0))
    period = float(np.mean(np.diff(ups)) * dt) if len(ups) > 1 else np.nan
    return tail, period


def vdp(quick):
    num_trials, num_iters, dt = (4, 10, 5e-3) if quick else (8, 25, 5e-3)
    xs, y, true_drift = vdp_data(jax.random.PRNGKey(3), num_trials, 3.0, dt, 40)
    model = GPSDE(2, kernel="rbf", emissions="point_process", dt=dt, num_inducing=5, init_latent_scale=3.0)
    t0 = time.time()
    res = model.fit(np.asarray(y), key=jax.random.PRNGKey(4), num_iters=num_iters, num_mstep_iters=10,
                    learning_rate=0.05, verbose=True)
    seconds = time.time() - t0
    X = np.concatenate([p.latent_means for p in res.posterior])
    W, r2 = affine_alignment(X, np.asarray(xs).reshape(-1, 2))
    lo, hi = X.min(0), X.max(0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 6), np.linspace(lo[1], hi[1], 6)), -1).reshape(-1, 2)
    fps = sample_fixed_points(model, res.params, jax.random.PRNGKey(0), grid, use_mean=True)
    pts = to_true(fps.points[0], W) if len(fps.points[0]) else np.zeros((0, 2))
    centre = int(np.argmin(np.linalg.norm(pts, axis=1))) if len(pts) else None
    f_mean = model.drift_function(res.params)
    start = fps.points[0][centre] + 0.1 if centre is not None else X.mean(0)
    tail, period = limit_cycle_amplitude(f_mean, start, dt, int(12 / dt))
    tail_true = to_true(tail, W)
    true_tail, true_period = limit_cycle_amplitude(true_drift, np.array([0.1, 0.1]), dt, int(12 / dt))
    amp, true_amp = np.abs(tail_true).max(0), np.abs(true_tail).max(0)
    metrics = dict(
        latent_r2=r2, fit_seconds=seconds, num_iters=num_iters, num_trials=num_trials,
        elbo_first=float(res.elbos[0]), elbo_last=float(res.elbos[-1]),
        elbo_increase_fraction=float(np.mean(np.diff(res.elbos) > 0)),
        focus=None if centre is None else dict(point=pts[centre].tolist(), kind=str(fps.kind[0][centre]),
                                               eigenvalues=[str(e) for e in fps.eigenvalues[0][centre]]),
        limit_cycle_amplitude=amp.tolist(), true_limit_cycle_amplitude=true_amp.tolist(),
        limit_cycle_period=period, true_limit_cycle_period=true_period,
    )
    print("\n| metric | value | reference |\n|---|---|---|")
    print(f"| latent R^2 (affine) | {r2:.4f} | |")
    if centre is not None:
        print(f"| central fixed point (true coords) | ({pts[centre][0]:.2f}, {pts[centre][1]:.2f}) {fps.kind[0][centre]}, "
              f"eig {np.round(fps.eigenvalues[0][centre], 2)} | (0, 0) unstable focus |")
    print(f"| limit-cycle amplitude (max abs x1, x2) | {np.round(amp, 2)} | {np.round(true_amp, 2)} |")
    print(f"| limit-cycle period (s) | {period:.3f} | {true_period:.3f} |")
    print(f"| ELBO first -> last | {res.elbos[0]:.1f} -> {res.elbos[-1]:.1f} | increases |")
    save("vdp_quick" if quick else "vdp", metrics)
    return metrics


def seconds_per_iteration(model, y, num_iters=3):
    """Fit once for compilation, then time num_iters iterations (same shapes, compiled)."""
    model.fit(y, key=jax.random.PRNGKey(0), num_iters=1, num_mstep_iters=10)
    t0 = time.time()
    model.fit(y, key=jax.random.PRNGKey(0), num_iters=num_iters, num_mstep_iters=10)
    t1 = time.time()
    model.fit(y, key=jax.random.PRNGKey(0), num_iters=1, num_mstep_iters=10)
    t2 = time.time()
    return ((t1 - t0) - (t2 - t1)) / (num_iters - 1)


def timing(quick):
    duration = 0.5 if quick else 1.0
    trial_counts = (2, 4) if quick else (5, 10, 20)
    inducing = (3, 4) if quick else (3, 4, 5, 6)
    data = two_regime_benchmark(jax.random.PRNGKey(0), num_trials=max(trial_counts), duration=duration)
    spikes = np.asarray(data["spikes"])
    rows = []
    for B in trial_counts:
        s = seconds_per_iteration(GPSLDS(2, 2, init_latent_scale=3.0), spikes[:B])
        rows.append(dict(model="GPSLDS", trials=B, num_features=6, seconds=s))
    for m in inducing:
        s = seconds_per_iteration(GPSDE(2, kernel="rbf", num_inducing=m, init_latent_scale=3.0), spikes[: trial_counts[0]])
        rows.append(dict(model="GPSDE-rbf", trials=trial_counts[0], num_features=m * m, seconds=s))
    print(f"\nSeconds per variational-EM iteration ({duration} s trials at dt = 1 ms, 50 neurons, 2 E-steps + "
          f"10 Adam steps per iteration; {jax.devices()[0].platform}).\n")
    print("| model | trials | features M | s / iteration | ratio to first row of its group |\n|---|---|---|---|---|")
    for r in rows:
        first = next(q for q in rows if q["model"] == r["model"])
        r["ratio"] = r["seconds"] / first["seconds"]
        print(f"| {r['model']} | {r['trials']} | {r['num_features']} | {r['seconds']:.3f} | {r['ratio']:.2f} |")
    save("timing_quick" if quick else "timing", dict(duration=duration, rows=rows))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--recovery", action="store_true")
    parser.add_argument("--vdp", action="store_true")
    args = parser.parse_args()
    if args.recovery:
        recovery(args.quick)
    elif args.vdp:
        vdp(args.quick)
    else:
        timing(args.quick)


if __name__ == "__main__":
    main()
