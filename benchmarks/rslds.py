"""rSLDS Laplace-EM speed and NASCAR accuracy.

    python benchmarks/rslds.py [--quick] [--sections nascar,accuracy,T,trials,worm]

- nascar:   seconds per Laplace-EM iteration (median of 3 compiled calls) and total fit time (50 iterations,
            including initialisation and compilation) on NASCAR, T = 10,000.
- accuracy: NASCAR T = 10,000, seeds 0, 1, 2: state accuracy after the best permutation, latent R^2 after
            affine alignment, from the default initialisation (50 iterations).
- T:        seconds per iteration vs T in 10^3, 10^4, 10^5 (one trial).
- trials:   seconds per iteration vs number of trials 1..256 (each 200 steps).
- worm:     seconds per iteration and total fit time on a 146-neuron C. elegans recording (K=3, D=4).
The peer (lindermanlab/ssm, numpy) is not installable in this environment; its figures come from the
issue (0.77-0.94 s per iteration on NASCAR T = 10,000 on this CPU; 10-14 s per worm).
Prints markdown tables and writes benchmarks/results/rslds.json (after every section). --quick: small sizes.
Wall times on a shared machine are inflated by other load; CPU seconds of this process (time.process_time)
are reported beside them as the closer measure of the cost on an idle CPU.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

PEER_NASCAR_S_PER_ITER = (0.77, 0.94)
RESULTS = Path(__file__).resolve().parent / "results" / "rslds.json"


def seconds_per_iteration(model, data, key, repeats=3, parallel=False):
    """Median wall time of the compiled Laplace-EM iteration (after one warm-up call)."""
    import jax

    from ssmneuro.models.fitting.initialize import initialize
    from ssmneuro.models.fitting.laplace_em import laplace_em_iteration

    ys, us, ms, batches, groups = model._prepare(data, None, None)
    params, qs = initialize(model, key, ys, us, ms, batches, groups, num_restarts=1)
    params = model._cast(params, batches)
    out = laplace_em_iteration(model, params, batches, qs, parallel=parallel)
    jax.block_until_ready(out)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = laplace_em_iteration(model, out[0], batches, out[1], parallel=parallel)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.median(times)), float(np.median(cpu))


def nascar_data(seed, T):
    import jax

    from ssmneuro.models.simulate import nascar

    model, _, z, x, y = nascar(jax.random.key(seed), T)
    return model, np.asarray(z), np.asarray(x), np.asarray(y)


def section_nascar(T, iters):
    import jax

    model, z, x, y = nascar_data(0, T)
    spi, cpu = seconds_per_iteration(model, y, jax.random.key(1))
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(y, key=jax.random.key(100), num_iters=iters, verbose=False)
    total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(T=T, iters=iters, seconds_per_iteration=spi, cpu_seconds_per_iteration=cpu,
                total_fit_seconds=total, total_fit_cpu_seconds=total_cpu,
                speedup_vs_peer=[PEER_NASCAR_S_PER_ITER[0] / spi, PEER_NASCAR_S_PER_ITER[1] / spi],
                cpu_speedup_vs_peer=[PEER_NASCAR_S_PER_ITER[0] / cpu, PEER_NASCAR_S_PER_ITER[1] / cpu])


def section_accuracy(T, iters, seeds=(0, 1, 2)):
    import jax

    from ssmneuro.models.simulate import latent_r2, state_accuracy

    rows = []
    for s in seeds:
        model, z, x, y = nascar_data(s, T)
        t0 = time.perf_counter()
        r = model.fit(y, key=jax.random.key(100 + s), num_iters=iters, verbose=False)
        post = r.posterior[0]
        rows.append(dict(seed=s, T=T, iters=iters, state_accuracy=float(state_accuracy(z, np.argmax(post.discrete_probs, -1), 4)),
                         latent_r2=float(latent_r2(x, post.latent_means)), seconds=time.perf_counter() - t0,
                         rejected=len(r.rejected)))
        print(rows[-1], flush=True)
    return rows


def section_T(Ts):
    import jax

    rows = []
    for T in Ts:
        model, z, x, y = nascar_data(0, T)
        spi, cpu = seconds_per_iteration(model, y, jax.random.key(1))
        rows.append(dict(T=T, seconds_per_iteration=spi, cpu_seconds_per_iteration=cpu))
        print(rows[-1], flush=True)
    return rows


def section_trials(counts, T):
    import jax

    rows = []
    model, z, x, y = nascar_data(0, T * max(counts))
    for B in counts:
        data = [y[i * T:(i + 1) * T] for i in range(B)]
        spi, cpu = seconds_per_iteration(model, data, jax.random.key(1))
        rows.append(dict(trials=B, T_each=T, seconds_per_iteration=spi, cpu_seconds_per_iteration=cpu))
        print(rows[-1], flush=True)
    return rows


def section_worm(iters):
    import jax

    import celegans
    from ssmneuro.models import RSLDS

    files = sorted(celegans.DATA.glob("*.h5"))
    if not files:
        return {"skipped": f"no data in {celegans.DATA}"}
    path = max(files, key=lambda p: celegans.load_worm(p)[0].shape[1])
    traces, rev = celegans.load_worm(path)
    model = RSLDS(3, 4, traces.shape[1], transitions="recurrent")
    spi, cpu = seconds_per_iteration(model, traces, jax.random.key(0))
    c0 = time.process_time()
    states, timing, _, _ = celegans.fit_worm(traces, 0, iters)
    return dict(worm=path.stem, T=traces.shape[0], N=traces.shape[1], seconds_per_iteration=spi,
                cpu_seconds_per_iteration=cpu, total_fit_seconds=timing["wall_s"],
                total_fit_cpu_seconds=time.process_time() - c0, iters=iters,
                balanced_accuracy=float(celegans.majority_balanced_accuracy(states, rev)))


def main(argv=None):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sections", default="nascar,accuracy,T,trials,worm")
    args = ap.parse_args(argv)
    secs = args.sections.split(",")
    q = args.quick
    # sections run separately add to (not replace) the results of earlier runs at the same size
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    out = old if old.get("quick") == q else {"quick": q}
    save = lambda: (RESULTS.parent.mkdir(exist_ok=True), RESULTS.write_text(json.dumps(out, indent=1)))
    if "nascar" in secs:
        out["nascar"] = section_nascar(1000 if q else 10_000, 3 if q else 50)
        print(out["nascar"], flush=True)
        save()
    if "accuracy" in secs and not q:
        out["accuracy"] = section_accuracy(10_000, 50)
        save()
    if "T" in secs:
        out["scaling_T"] = section_T([1000, 3000] if q else [1000, 10_000, 100_000])
        save()
    if "trials" in secs:
        out["scaling_trials"] = section_trials([1, 4] if q else [1, 4, 16, 64, 256], 200)
        save()
    if "worm" in secs and not q:
        out["worm"] = section_worm(50)
        print(out["worm"], flush=True)

    print("\n| case | wall s / it | CPU s / it | total fit wall s (CPU s) | CPU speed-up vs peer (0.77-0.94 s/it) |")
    print("|---|---|---|---|---|")
    if "nascar" in out:
        n = out["nascar"]
        print(f"| NASCAR T={n['T']} | {n['seconds_per_iteration']:.3f} | {n['cpu_seconds_per_iteration']:.3f} | "
              f"{n['total_fit_seconds']:.1f} ({n['total_fit_cpu_seconds']:.1f}) [{n['iters']} it] | "
              f"{n['cpu_speedup_vs_peer'][0]:.1f}-{n['cpu_speedup_vs_peer'][1]:.1f}x |")
    if isinstance(out.get("worm"), dict) and "T" in out["worm"]:
        w = out["worm"]
        print(f"| worm {w['worm']} (N={w['N']}, T={w['T']}) | {w['seconds_per_iteration']:.3f} | "
              f"{w['cpu_seconds_per_iteration']:.3f} | {w['total_fit_seconds']:.1f} ({w['total_fit_cpu_seconds']:.1f}) "
              f"[{w['iters']} it] | peer 10-14 s per fit |")
    for r in out.get("scaling_T", []):
        print(f"| NASCAR T={r['T']} | {r['seconds_per_iteration']:.3f} | {r['cpu_seconds_per_iteration']:.3f} | | |")
    for r in out.get("scaling_trials", []):
        print(f"| {r['trials']} trials x {r['T_each']} | {r['seconds_per_iteration']:.3f} | "
              f"{r['cpu_seconds_per_iteration']:.3f} | | |")
    if "accuracy" in out:
        print("\n| seed | state accuracy | latent R^2 | fit s |\n|---|---|---|---|")
        for r in out["accuracy"]:
            print(f"| {r['seed']} | {r['state_accuracy']:.4f} | {r['latent_r2']:.5f} | {r['seconds']:.0f} |")
    save()


if __name__ == "__main__":
    main()
