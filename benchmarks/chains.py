"""Benchmark of the discrete-chain and block-tridiagonal core (issue 2, core-chains), float32.

    python benchmarks/chains.py [--quick]

HMM smoother (smoothed marginals + expected transition counts): ssmneuro sequential / parallel against
dynamax's ``hmm_smoother`` and parallel ``hmm_smoother``, side by side in one run; block-tridiagonal
posterior: ssmneuro sequential vs parallel (cyclic reduction). Prints a markdown table with time ratios
and the largest difference of the smoothed marginals to dynamax; writes results/chains.json beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.inference.block_tridiag import _posterior_jit as block_tridiag_jit
from ssmneuro.inference.hmm import _smoother_jit as hmm_smoother_jit
from ssmneuro.inference.scan import schedule_for


def best_time(fn, *args, repeats=3):
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def hmm_problem(T, K, seed=0):
    rng = np.random.default_rng(seed)
    A = 0.9 * np.eye(K) + 0.1 * rng.dirichlet(np.ones(K), size=K)
    log_lik = rng.normal(scale=3.0, size=(T, K))
    return [jnp.asarray(x, jnp.float32) for x in (np.full(K, 1.0 / K), A, log_lik)]


def bench_hmm(T, K):
    from dynamax.hidden_markov_model import hmm_smoother as dx_smoother
    from dynamax.hidden_markov_model.parallel_inference import hmm_smoother as dx_parallel_smoother

    pi, A, log_lik = hmm_problem(T, K)
    ours_seq = jax.jit(lambda p, a, l: hmm_smoother_jit(jnp.log(p), jnp.log(a), l, None, parallel=False))
    ours_par = jax.jit(lambda p, a, l: hmm_smoother_jit(jnp.log(p), jnp.log(a), l, None,
                                                        parallel=schedule_for(True)))
    dx_seq = jax.jit(lambda p, a, l: dx_smoother(p, a, l))
    dx_par = jax.jit(lambda p, a, l: dx_parallel_smoother(p, a, l))
    row = {"T": T, "K": K}
    for name, fn in (("ours_seq", ours_seq), ("ours_par", ours_par), ("dynamax_seq", dx_seq), ("dynamax_par", dx_par)):
        row[name] = best_time(fn, pi, A, log_lik)
    row["max_diff_vs_dynamax"] = float(jnp.max(jnp.abs(ours_seq(pi, A, log_lik).smoothed_probs
                                                       - dx_seq(pi, A, log_lik).smoothed_probs)))
    return row


def bench_block_tridiag(T, D, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(T, D, D))
    J_diag = jnp.asarray(M @ np.swapaxes(M, -1, -2) + 4.0 * D * np.eye(D), jnp.float32)
    J_lower = jnp.asarray(rng.normal(size=(T - 1, D, D)), jnp.float32)
    h = jnp.asarray(rng.normal(size=(T, D)), jnp.float32)
    row = {"T": T, "D": D}
    for name, parallel in (("seq", False), ("par", True)):
        row[name] = best_time(lambda a, b, c, p=parallel: block_tridiag_jit(a, b, c, parallel=p), J_diag, J_lower, h)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    args = parser.parse_args()
    hmm_sizes = [(1000, 4), (1000, 20)] if args.quick else [(1000, 4), (1000, 20), (10_000, 4), (10_000, 20), (10_000, 100)]
    bt_sizes = [(1000, 2), (1000, 8)] if args.quick else [(1000, 2), (1000, 8), (10_000, 8), (100_000, 8), (10_000, 32)]
    device = jax.devices()[0].device_kind
    hmm_rows = [bench_hmm(T, K) for T, K in hmm_sizes]
    bt_rows = [bench_block_tridiag(T, D) for T, D in bt_sizes]

    print(f"\nHMM smoother, float32, {device} (seconds; ratio = dynamax / ours, > 1 means ours is faster)\n")
    print("| T | K | ours seq | dynamax seq | seq ratio | ours par | dynamax par | par ratio | max |Δp| vs dynamax |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in hmm_rows:
        print(f"| {r['T']} | {r['K']} | {r['ours_seq']:.4f} | {r['dynamax_seq']:.4f} | {r['dynamax_seq'] / r['ours_seq']:.2f} "
              f"| {r['ours_par']:.4f} | {r['dynamax_par']:.4f} | {r['dynamax_par'] / r['ours_par']:.2f} | {r['max_diff_vs_dynamax']:.1e} |")
    print(f"\nBlock-tridiagonal posterior, float32, {device} (seconds)\n")
    print("| T | D | sequential | parallel (cyclic reduction) | seq / par |")
    print("|---|---|---|---|---|")
    for r in bt_rows:
        print(f"| {r['T']} | {r['D']} | {r['seq']:.4f} | {r['par']:.4f} | {r['seq'] / r['par']:.2f} |")
    out = Path(__file__).resolve().parent / "results" / "chains.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": device, "hmm_smoother": hmm_rows, "block_tridiag": bt_rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
