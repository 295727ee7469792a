"""Regenerate the analysis figures used in the docs (PNG and SVG in docs/figures/).

    .venv/bin/python docs/figures/make_figures.py [--fit]

Without --fit everything comes from known systems and from posterior latents of known models (fast);
with --fit the line-attractor figures come from an RSLDS fitted by ssmneuro (line_attractor_demo.py).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ssmneuro import plotting  # noqa: E402
from ssmneuro.analysis import (find_continuous_attractors, find_fixed_points, find_slow_points,  # noqa: E402
                               off_manifold_set, pulse_response, rank_neurons, state_dynamics, summarize_scores,
                               variance_explained_arrays)
from ssmneuro.analysis.dynamics_posterior import latent_stats, sample_dynamics  # noqa: E402
from ssmneuro.analysis.states import mixture_map, real_fixed_points  # noqa: E402
from ssmneuro.analysis.toy_systems import (SwitchingLinear, bistable_drift, line_attractor_dynamics,  # noqa: E402
                                           nascar, ring_drift, simulate_switching)

OUT = Path(__file__).resolve().parent
DT = 0.1


def save(fig, name):
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(OUT / f"{name}.{ext}", dpi=130)
    plt.close(fig)
    print("wrote", OUT / f"{name}.png")


def nascar_figure():  # noqa: D103
    system, centres = nascar()
    R, r = jnp.asarray(system.recurrent_weights), jnp.asarray(system.recurrent_biases)
    logits = lambda x: R @ x + r  # noqa: E731
    f = mixture_map(system.weights, system.biases, logits)
    summary = state_dynamics(system.weights, system.biases, DT)
    real, _ = real_fixed_points(summary.fixed_points, summary.has_fixed_point, lambda x: jnp.argmax(logits(x)))
    z, x, _ = simulate_switching(jax.random.PRNGKey(0), system, np.eye(2), np.zeros(2), 1000, 0.02, 0.0,
                                 initial_mean=np.array([0.0, 1.0]), initial_std=0.1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    plotting.plot_flow_field(f, (-4.5, 4.5), (-3, 3), axes[0], state_fn=logits, num_states=4, num_points=21,
                             nullclines=False)
    ok = summary.has_fixed_point
    plotting.plot_fixed_points(summary.fixed_points[ok], summary.kind[ok], ax=axes[0])
    for k in np.flatnonzero(ok):
        axes[0].annotate(f"x*{k} ({'real' if real[k] else 'virtual'})", summary.fixed_points[k], xytext=(6, 8),
                         textcoords="offset points", fontsize=8)
    axes[0].set_title("NASCAR: state-averaged flow, per-state fixed points")
    plotting.plot_latent_trajectory(x, z, axes[1], num_states=4)
    axes[1].set(xlim=(-4.5, 4.5), ylim=(-3, 3), title="a sampled trajectory, coloured by state")
    axes[1].set_aspect("equal", adjustable="box")
    save(fig, "nascar_flow")


def ring_and_bistable_figure():
    rng = np.random.default_rng(0)
    starts = rng.uniform(-2, 2, (300, 2))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    fp = find_fixed_points(bistable_drift, starts, time="continuous")
    plotting.plot_flow_field(bistable_drift, (-2, 2), (-2, 2), axes[0], time="continuous", style="stream")
    plotting.plot_fixed_points(fp.points, fp.kind, ax=axes[0])
    axes[0].legend(fontsize=7, loc="upper right")
    axes[0].set_title("bistable drift: dx = x - x^3, dy = -y")
    slow = find_slow_points(ring_drift, starts, time="continuous", q_threshold=1e-8, num_steps=3000)
    rings = find_continuous_attractors(slow)
    plotting.plot_flow_field(ring_drift, (-2, 2), (-2, 2), axes[1], time="continuous", style="stream")
    for a in rings:
        axes[1].plot(a.points[:, 0], a.points[:, 1], ".", color=plotting.OKABE_ITO[5], ms=4,
                     label=f"{a.kind} attractor (radius {a.radius:.3f})")
    fp = find_fixed_points(ring_drift, starts, time="continuous", unique_tol=0.05)
    origin = np.linalg.norm(fp.points, axis=1) < 0.5
    plotting.plot_fixed_points(fp.points[origin], fp.kind[origin], ax=axes[1])
    axes[1].legend(fontsize=7, loc="upper right")
    axes[1].set_title("ring attractor: dx = (1 - |x|^2) x")
    save(fig, "fixed_points_bistable_ring")


def line_attractor_figures():
    """Score distributions (line attractor vs point-attractor control), time constants, perturbations,
    trajectories in the slow-mode plane, state raster and variance explained, on a 3-D, 2-state system."""
    A_line, V, _ = line_attractor_dynamics(jax.random.PRNGKey(100), 3)
    A_point = V @ np.diag([0.9, 0.88, 0.85]) @ np.linalg.inv(V)
    A_reset = 0.8 * np.eye(3)
    N = 30
    C = np.asarray(jax.random.normal(jax.random.PRNGKey(101), (N, 3)))
    v = V[:, 0] / np.linalg.norm(V[:, 0])
    results, data = {}, {}
    for name, A0 in (("line attractor", A_line), ("point-attractor control", A_point)):
        system = SwitchingLinear(np.stack([A0, A_reset]), np.zeros((2, 3)), np.stack([np.zeros(3), 1.5 * v]),
                                 np.array([0.0, -4.5]))
        z, x, y = simulate_switching(jax.random.PRNGKey(0), system, C, np.zeros(N), 100, 0.1, 0.5, num_trials=20)
        stats = latent_stats(list(x), list(z), 2)
        samples = sample_dynamics(jax.random.PRNGKey(1), stats, 2000)
        results[name] = (summarize_scores(system.weights, DT, samples.weights, state=0), samples)
        data[name] = (z, x, y, system)

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (name, (res, _)) in zip(axes[:2], results.items()):
        plotting.plot_score_distribution(res, ax=ax)
        ax.set_title(f"{name}\n" + ax.get_title(), fontsize=9)
    res_line = results["line attractor"][0]
    plotting.plot_time_constants(res_line.time_constants, ax=axes[2], state_names=["state 0 (integrator)", "state 1 (reset)"])
    axes[2].set_title("time constants (point estimate)", fontsize=9)
    save(fig, "line_attractor_score")

    # perturbation design on the line attractor
    samples = results["line attractor"][1].weights[:500, 0]
    rank = rank_neurons(A_line, C, DT)
    on = pulse_response(A_line, C, rank.on_manifold[:5], DT, num_steps=4000, weight_samples=samples)
    off = pulse_response(A_line, C, off_manifold_set(rank, C, 5), DT, num_steps=4000, weight_samples=samples)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plotting.plot_neuron_loadings(rank, axes[0], on_set=rank.on_manifold[:5], off_set=off_manifold_set(rank, C, 5))
    axes[0].set_title("neuron loadings on the integration mode", fontsize=9)
    plotting.plot_pulse_responses({"top-5 on-manifold": on, "5 off-manifold": off}, ax=axes[1])
    axes[1].set_title("predicted response to a one-bin pulse", fontsize=9)
    save(fig, "perturbation")

    # trajectories in the plane of the two slowest modes, state raster, variance explained
    z, x, y, system = data["line attractor"]
    proj = plotting.slow_mode_projection(A_line)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"width_ratios": [1, 1.3, 1]})
    for i in range(4):
        plotting.plot_latent_trajectory(x[i], z[i], axes[0], projection=proj, num_states=2,
                                        xlabel="slowest mode", ylabel="second mode")
    axes[0].set_title("latents projected on the two slowest modes", fontsize=9)
    behaviour = [(xi @ rank.left > 1.0).astype(int) for xi in x[:8]]
    plotting.plot_state_raster(list(z[:8]), ax=axes[1], dt=DT, behaviour=behaviour,
                               behaviour_names=["integrated value <= 1", "integrated value > 1"])
    axes[1].set_title("most likely state per trial, with a behaviour label", fontsize=9)
    ve = variance_explained_arrays(np.concatenate(y), np.concatenate(x), C, states=np.concatenate(z), num_states=2)
    plotting.plot_variance_explained(ve, ax=axes[2])
    axes[2].set_title("variance explained", fontsize=9)
    save(fig, "trajectories_states_variance")
    return results, on, off


def fitted_rslds_figure(iters: int = 50):
    """An RSLDS fitted to the simulated 2-state line-attractor rSLDS (line_attractor_demo.py): flow of the
    fitted model with per-state fixed points, posterior latents coloured by state, score distribution."""
    import sys

    sys.path.insert(0, str(OUT))
    from line_attractor_demo import DT as DEMO_DT, run  # noqa: E402

    from ssmneuro.analysis import state_fixed_points  # noqa: E402

    out = run(iters=iters)
    model, fit, res = out["model"], out["fit"], out["result"]
    sfp = state_fixed_points(model, fit.params, DEMO_DT)
    xs = np.concatenate([np.asarray(p.latent_means) for p in fit.posterior])
    lo, hi = np.percentile(xs, 1, axis=0) - 0.5, np.percentile(xs, 99, axis=0) + 0.5
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    plotting.plot_model_flow(model, fit.params, (lo[0], hi[0]), (lo[1], hi[1]), axes[0], num_points=21)
    ok = sfp.dynamics.has_fixed_point
    plotting.plot_fixed_points(sfp.dynamics.fixed_points[ok], sfp.dynamics.kind[ok], ax=axes[0])
    axes[0].set_title("fitted rSLDS: flow by most likely state, fixed points", fontsize=9)
    for p in fit.posterior[:6]:
        plotting.plot_latent_trajectory(np.asarray(p.latent_means), np.argmax(np.asarray(p.discrete_probs), 1),
                                        axes[1], num_states=model.num_states)
    axes[1].set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    axes[1].set_title("posterior mean latents, coloured by state", fontsize=9)
    plotting.plot_score_distribution(res, ax=axes[2])
    axes[2].set_title(f"fitted (true score {out['true_score']:.2f})\n" + axes[2].get_title(), fontsize=9)
    save(fig, "fitted_rslds")
    return res, out["true_score"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fit", action="store_true", help="also fit an RSLDS (several minutes)")
    args = parser.parse_args()
    if args.fit:
        res, true_score = fitted_rslds_figure()
        print(f"fitted RSLDS: score {res.score:.2f} (true {true_score:.2f}), 90% interval "
              f"[{res.interval[0]:.2f}, {res.interval[1]:.2f}], P(score > 1) = {res.prob_above_1:.3f}")
    with jax.enable_x64(True):
        nascar_figure()
        ring_and_bistable_figure()
        results, on, off = line_attractor_figures()
    for name, (res, _) in results.items():
        print(f"{name}: score {res.score:.2f}, 90% interval [{res.interval[0]:.2f}, {res.interval[1]:.2f}], "
              f"P(score > 1) = {res.prob_above_1:.3f}")
    print(f"decay time on-manifold {on.decay_time:.1f} s [{on.interval[0]:.1f}, {on.interval[1]:.1f}], "
          f"off-manifold {off.decay_time:.2f} s [{off.interval[0]:.2f}, {off.interval[1]:.2f}]")
