"""GP-SLDS / GP-SDE benchmarks: speed of variational EM and recovery on the synthetic systems.

    python benchmarks/gpslds.py [--quick]            seconds per EM iteration (scaling in trials, inducing points)
    python benchmarks/gpslds.py --recovery [--quick] Hu et al.'s two-regime benchmark (30 trials, 50 neurons,
                                                     dt = 1 ms, 2.5 s): R^2, fixed points, boundary after alignment
    python benchmarks/gpslds.py --vdp [--quick]      GP-SDE (RBF) on a Van der Pol oscillator seen through spikes
                                                     (8 trials, half started near the focus, 120 neurons,
                                                     dt = 5 ms; --quick: 10 ms; --dt DT): focus, limit
                                                     cycle, ELBO

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

from ssmneuro.analysis.gp_attractors import limit_cycle, sample_fixed_points
from ssmneuro.models.gp import GPSDE, GPSLDS
from ssmneuro.models.gp.simulate import two_regime_benchmark, van_der_pol_benchmark

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


def vdp(quick, dt=None):
    """GP-SDE (RBF, 5 x 5 inducing points) on ``van_der_pol_benchmark``: half the trials start within radius 1 of
    the focus (otherwise no data ever reach it), 120 neurons. Learned latents are mapped to the true ones by the
    affine alignment; eigenvalues of the focus are invariant under it (J_true = W^T J W^-T).
    dt: grid step (default 5 ms, 10 ms with quick); a non-default dt is saved as its own section."""
    num_trials, num_iters = 8, 30
    section = "vdp_quick" if quick else "vdp"
    if dt is None:
        dt = 1e-2 if quick else 5e-3
    else:
        section = f"vdp_dt{dt * 1e3:g}ms"
    data = van_der_pol_benchmark(jax.random.PRNGKey(3), num_trials=num_trials, num_near_focus=num_trials // 2, dt=dt)
    xs, true_drift = np.asarray(data["latents"]), data["drift"]
    model = GPSDE(2, kernel="rbf", emissions="point_process", dt=dt, num_inducing=5, init_latent_scale=3.0)
    t0 = time.time()
    res = model.fit(np.asarray(data["spikes"]), key=jax.random.PRNGKey(4), num_iters=num_iters, num_mstep_iters=10,
                    learning_rate=0.05, verbose=True)
    seconds = time.time() - t0
    X = np.concatenate([p.latent_means for p in res.posterior])
    W, r2 = affine_alignment(X, xs.reshape(-1, 2))
    lo, hi = X.min(0), X.max(0)
    grid = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], 6), np.linspace(lo[1], hi[1], 6)), -1).reshape(-1, 2)
    fps = sample_fixed_points(model, res.params, jax.random.PRNGKey(0), grid, use_mean=True)
    pts = to_true(fps.points[0], W) if len(fps.points[0]) else np.zeros((0, 2))
    centre = int(np.argmin(np.linalg.norm(pts, axis=1))) if len(pts) else None
    true_eigs = np.linalg.eigvals(np.asarray(jax.jacfwd(true_drift)(jnp.zeros(2))))
    # the cycle, followed from the end of the first trial (on the cycle by then), in true coordinates
    cycle, period = limit_cycle(model.drift_function(res.params), res.posterior[0].latent_means[-1], dt, 12.0)
    true_cycle, true_period = limit_cycle(true_drift, jnp.array([0.1, 0.1]), dt, 12.0)
    cycle = to_true(cycle, W)
    amp, true_amp = np.ptp(cycle, 0) / 2, np.ptp(true_cycle, 0) / 2
    focus = None
    if centre is not None:
        eigs = fps.eigenvalues[0][centre]
        focus = dict(point=pts[centre].tolist(), distance_to_origin=float(np.linalg.norm(pts[centre])),
                     kind=str(fps.kind[0][centre]), eigenvalues=[str(e) for e in eigs])
    metrics = dict(
        latent_r2=r2, fit_seconds=seconds, num_iters=num_iters, num_trials=num_trials, dt=dt,
        num_near_focus=num_trials // 2, num_neurons=int(data["spikes"].shape[-1]),
        elbo_first=float(res.elbos[0]), elbo_last=float(res.elbos[-1]),
        elbo_increase_fraction=float(np.mean(np.diff(res.elbos) > 0)),
        focus=focus, true_focus_eigenvalues=[str(e) for e in true_eigs],
        limit_cycle_amplitude=amp.tolist(), true_limit_cycle_amplitude=true_amp.tolist(),
        limit_cycle_period=period, true_limit_cycle_period=true_period,
    )
    print(f"\n{num_trials} trials x 3 s ({num_trials // 2} start within 1 of the focus), dt = {dt * 1e3:g} ms, "
          f"{metrics['num_neurons']} neurons, {num_iters} EM iterations, {seconds:.0f} s\n")
    print("| metric | value | truth / target |\n|---|---|---|")
    print(f"| latent R^2 (affine) | {r2:.4f} | |")
    if focus is not None:
        p = pts[centre]
        print(f"| focus location (true coords) | ({p[0]:.2f}, {p[1]:.2f}), {focus['distance_to_origin']:.2f} from "
              f"the origin | (0, 0) |")
        print(f"| focus eigenvalues | {np.round(eigs, 2)} ({focus['kind']}) | {np.round(true_eigs, 2)} (unstable) |")
    else:
        print("| focus | none found | (0, 0) unstable |")
    print(f"| limit-cycle period (s) | {period:.3f} ({100 * (period / true_period - 1):+.1f}%) | {true_period:.3f} "
          f"(within 5%) |")
    print(f"| limit-cycle amplitude (half range x1, x2) | {np.round(amp, 2)} "
          f"({np.round(100 * (amp / true_amp - 1), 1)}%) | {np.round(true_amp, 2)} (within 15%) |")
    print(f"| ELBO first -> last | {res.elbos[0]:.1f} -> {res.elbos[-1]:.1f} "
          f"({100 * metrics['elbo_increase_fraction']:.0f}% of iterations up) | increases |")
    save(section, metrics)
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
    parser.add_argument("--dt", type=float, default=None, help="grid step of --vdp (s)")
    args = parser.parse_args()
    if args.recovery:
        recovery(args.quick)
    elif args.vdp:
        vdp(args.quick, args.dt)
    else:
        timing(args.quick)


if __name__ == "__main__":
    main()
