"""Kalman filter / smoother speed against dynamax, side by side in one run (float32, this machine).

    python benchmarks/inference.py [--quick] [--max-seconds 20] [--ops filter smoother] [--cells 8,200,2000 ...]

Problem: D latents, N emissions with diagonal noise (emission_cov given as (N,) variances: our
information-form fast path; dynamax gets the same (N,) vector), static parameters, T steps.
Columns: seconds per call (best of a few calls after a warm-up compile, jitted, block_until_ready) and
the ratio dynamax / ours (> 1: we are faster). Prints a markdown table, writes benchmarks/results/inference.json.
dynamax's sequential filter/smoother get the emission noise both as its (N,) diagonal and as a full (N, N)
matrix at T <= 2000, and the faster form is kept (and reused at larger T for the same op, D, N); its
parallel ones get the (N,) diagonal (their Woodbury path). Skips: dynamax runs whose
estimated time (from the previous T) exceeds --max-seconds, and configurations whose covariance arrays
would exceed ~2.5 GB (D = 32 at T = 10^5). --ops and --cells run a subset, written to
benchmarks/results/inference_subset.json (e.g. only the sequential filter and smoother: dynamax's
parallel ones take minutes to compile on a small CPU). The smoother returns the smoothed means only, for
both libraries, so XLA drops the work only the covariances need. OpenBLAS is pinned to one thread (set
before jax loads it, for both libraries alike): its threading of tiny triangular solves costs 10-20x on a
loaded 2-core machine.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from dynamax.linear_gaussian_ssm import inference as dx_seq
from dynamax.linear_gaussian_ssm import parallel_inference as dx_par

from ssmneuro.inference.lgssm import LGSSMParams, kalman_filter, kalman_smoother

RESULTS = Path(__file__).resolve().parent / "results" / "inference.json"


def make_problem(D, N, T, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    C = rng.normal(size=(N, D)) / np.sqrt(D)
    params = LGSSMParams(np.zeros(D), np.eye(D), 0.98 * Q, np.zeros(D), 0.1 * np.eye(D), C,
                         rng.normal(size=N), rng.uniform(0.5, 1.5, N))
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
    x = np.zeros((T, D))
    noise = rng.normal(size=(T, D)) * np.sqrt(0.1)
    for t in range(1, T):
        x[t] = 0.98 * Q @ x[t - 1] + noise[t]
    y = x @ C.T + params.emission_bias + rng.normal(size=(T, N)) * np.sqrt(params.emission_cov)
    return params, jnp.asarray(y, jnp.float32)


def dynamax_params(p, full_cov=False):
    R = jnp.diag(p.emission_cov) if full_cov else p.emission_cov
    return dx_seq.make_lgssm_params(p.initial_mean, p.initial_cov, p.dynamics_matrix, p.dynamics_cov,
                                    p.emission_matrix, R, dynamics_bias=p.dynamics_bias,
                                    emissions_bias=p.emission_bias)


def timeit(calls, min_total=1.5, max_reps=7):
    """Time several (fn, args) side by side: one warm-up (compile) call each, then rounds calling each in
    turn (so load changes hit all alike) until min_total seconds or max_reps rounds; best time each.
    Returns [(best seconds, output), ...]."""
    outs = [jax.block_until_ready(fn(*args)) for fn, args in calls]
    best, spent = [float("inf")] * len(calls), 0.0
    for _ in range(max_reps):
        for i, (fn, args) in enumerate(calls):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*args))
            dt = time.perf_counter() - t0
            best[i], spent = min(best[i], dt), spent + dt
        if spent > min_total and _ >= 2:  # at least three rounds
            break
    return list(zip(best, outs))


OURS = {
    "filter": jax.jit(lambda p, y: kalman_filter(p, y).log_likelihood),
    "smoother": jax.jit(lambda p, y: kalman_smoother(p, y).smoothed_means),
    "parallel_filter": jax.jit(lambda p, y: kalman_filter(p, y, parallel=True).log_likelihood),
    "parallel_smoother": jax.jit(lambda p, y: kalman_smoother(p, y, parallel=True).smoothed_means),
}
DYNAMAX = {
    "filter": jax.jit(lambda p, y: dx_seq.lgssm_filter(p, y).marginal_loglik),
    "smoother": jax.jit(lambda p, y: dx_seq.lgssm_smoother(p, y).smoothed_means),
    "parallel_filter": jax.jit(lambda p, y: dx_par.lgssm_filter(p, y).marginal_loglik),
    "parallel_smoother": jax.jit(lambda p, y: dx_par.lgssm_smoother(p, y).smoothed_means),
}


def grid(quick):
    if quick:
        return [(8, 200, 2000), (2, 10, 1000)]
    cells = [(8, 200, 2000)]  # the target cell first, then by increasing T (partial runs stay useful)
    for T in (1000, 10_000, 100_000):
        for D in (2, 8, 32):
            for N in (10, 200):
                cells.append((D, N, T))
    return cells


def run(quick=False, max_seconds=20.0, out=None, ops=tuple(OURS), cells=None):
    records, slow_est, best_form = [], {}, {}
    for D, N, T in cells or grid(quick):
        if T * D * D * 4 * 8 > 2.5e9:
            print(f"skip D={D} N={N} T={T}: covariance arrays too large for this shared machine", flush=True)
            continue
        params, y = make_problem(D, N, T)
        row = dict(D=D, N=N, T=T)
        for op in ops:
            key = (op, D, N)
            forms = []
            if slow_est.get(key, 0.0) * T <= max_seconds:
                both = ["diagonal", "full"] if not op.startswith("parallel") else ["diagonal"]
                forms = [best_form[key]] if key in best_form and T > 2000 else both
            calls = [(OURS[op], (params, y))] + [(DYNAMAX[op], (dynamax_params(params, f == "full"), y)) for f in forms]
            results = timeit(calls)
            ours, ours_out = results[0]
            theirs, form, diff = None, None, None
            if forms:
                k = min(range(len(forms)), key=lambda i: results[1 + i][0])
                form, (theirs, their_out) = forms[k], results[1 + k]
                diff = float(np.max(np.abs(np.asarray(their_out) - np.asarray(ours_out))))
                best_form.setdefault(key, form)
                slow_est[key] = theirs / T
            row[op] = dict(ours=ours, dynamax=theirs, dynamax_R=form, max_abs_diff=diff,
                           ratio=None if theirs is None else theirs / ours)
            print(f"D={D:3d} N={N:4d} T={T:7d} {op:18s} ours {ours:9.4f}s  dynamax "
                  + ("skipped" if theirs is None else f"{theirs:9.4f}s ({form} R)  x{theirs / ours:7.1f}  |diff| {diff:.2g}"),
                  flush=True)
        records.append(row)
        if out is not None:
            out(records)
        jax.clear_caches()  # frees the cell's compiled programs: a full grid otherwise ends in LLVM out-of-memory
    return records


def table(records, ops=tuple(OURS)):
    head = "| D | N | T | " + " | ".join(f"{op} ours (s) | dynamax (s) | ratio" for op in ops) + " |"
    lines = [head, "|" + "---|" * (3 + 3 * len(ops))]
    for r in records:
        cells = [str(r["D"]), str(r["N"]), str(r["T"])]
        for op in ops:
            c = r[op]
            cells += [f"{c['ours']:.4f}", "skipped" if c["dynamax"] is None else f"{c['dynamax']:.4f}",
                      "—" if c["ratio"] is None else f"{c['ratio']:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--max-seconds", type=float, default=20.0,
                    help="skip a dynamax run whose estimated time exceeds this")
    ap.add_argument("--ops", nargs="+", choices=list(OURS), default=list(OURS), help="operations to time")
    ap.add_argument("--cells", nargs="+", metavar="D,N,T", help="problem sizes instead of the grid")
    ap.add_argument("--out", help="JSON path (default: benchmarks/results/inference[_subset|_quick].json)")
    args = ap.parse_args()
    cells = [tuple(int(v) for v in c.split(",")) for c in args.cells] if args.cells else None
    subset = cells is not None or args.ops != list(OURS)
    path = Path(args.out) if args.out else RESULTS.with_name(
        "inference_subset.json" if subset else "inference_quick.json" if args.quick else "inference.json")

    def save(records):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dict(device=str(jax.devices()[0]), cpu=platform.processor() or platform.machine(),
                                        dtype="float32", quick=args.quick, records=records), indent=1))

    records = run(args.quick, args.max_seconds, out=save, ops=args.ops, cells=cells)
    print()
    print(f"float32, {jax.devices()[0].platform}, {platform.processor() or platform.machine()}; ratio = dynamax / ours")
    print(table(records, args.ops))


if __name__ == "__main__":
    main()
