"""Throughput of the seq layers: parallel forward vs recurrent step loop, and the diagonal scan's bandwidth.

    python benchmarks/seq.py [--quick] [--lengths 1024 16384 65536]

For each layer and sequence length T (batch 1, width D): tokens/s of the jitted parallel forward (associative
scan or convolution) and of the jitted recurrent ``step`` loop (``lax.scan``), and their ratio, measured
side by side in one run. Then the diagonal scan h_t = a_t h_{t-1} + b_t (float32, parallel and sequential)
against a plain device copy of the same bytes: achieved GB/s counts reading a, b and writing h once.
Prints markdown tables and writes benchmarks/results/seq.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import equinox as eqx
import jax

from ssmneuro.inference.scan import diagonal_scan
from ssmneuro.seq.s5 import S5
from ssmneuro.seq.selective import SelectiveSSM
from ssmneuro.seq.wave import WaveSSM


def best_time(fn, *args, repeats=3):
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return min(times)


@eqx.filter_jit
def parallel_forward(layer, u):
    return layer(u)


@eqx.filter_jit
def step_loop(layer, u):
    return jax.lax.scan(lambda s, x: layer.step(s, x), layer.init_state(), u)[1]


def layers(D, key):
    k = jax.random.split(key, 4)
    return {
        "S5 (P=64, ZOH)": S5(D, 64, key=k[0]),
        "selective SSM (Ns=16)": SelectiveSSM(D, 16, key=k[1]),
        "nu-Wave, per-channel nu (N=8)": WaveSSM(D, 8, mode="channel", key=k[2]),
        "nu-Wave, input-dependent nu (N=8)": WaveSSM(D, 8, mode="input", key=k[3]),
    }


def bench_layers(lengths, D, repeats):
    rows = []
    for name, layer in layers(D, jax.random.PRNGKey(0)).items():
        for T in lengths:
            u = jax.random.normal(jax.random.PRNGKey(1), (T, D))
            t_par = best_time(parallel_forward, layer, u, repeats=repeats)
            t_seq = best_time(step_loop, layer, u, repeats=repeats)
            rows.append(dict(layer=name, T=T, D=D, parallel_tokens_per_s=T / t_par, step_tokens_per_s=T / t_seq,
                             speedup=t_seq / t_par))
            print(f"  {name} T={T}: parallel {T / t_par:,.0f} tok/s, step {T / t_seq:,.0f} tok/s", flush=True)
    return rows


def bench_bandwidth(T, D, repeats):
    a = jax.random.uniform(jax.random.PRNGKey(0), (T, D), minval=0.5, maxval=1.0)
    b = jax.random.normal(jax.random.PRNGKey(1), (T, D))
    copy = jax.jit(lambda a, b: (a + 0.0, b + 0.0))  # read a, b and write 2 arrays: 4 arrays' traffic
    scans = {
        "copy (a, b -> a', b')": (copy, 4),
        "diagonal_scan parallel": (jax.jit(lambda a, b: diagonal_scan(a, b, parallel=True)), 3),
        "diagonal_scan sequential": (jax.jit(lambda a, b: diagonal_scan(a, b, parallel=False)), 3),
    }
    rows, copy_bw = [], None
    for name, (fn, arrays) in scans.items():
        t = best_time(fn, a, b, repeats=repeats)
        bw = arrays * a.size * a.dtype.itemsize / t / 1e9
        copy_bw = copy_bw or bw
        rows.append(dict(op=name, T=T, D=D, seconds=t, GB_per_s=bw, fraction_of_copy=bw / copy_bw))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="T = 1024 only, small bandwidth test (< 1 min)")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 16384, 65536])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--bandwidth-shape", type=int, nargs=2, metavar=("T", "D"), default=None,
                   help="array shape of the bandwidth test (default 65536 x 256; 4096 x 256 with --quick)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "seq.json"))
    a = p.parse_args()
    lengths = [1024] if a.quick else a.lengths
    repeats = 2 if a.quick else 3
    layer_rows = bench_layers(lengths, a.dim, repeats)
    T_bw, D_bw = a.bandwidth_shape or ((4096 if a.quick else 65536), 256)
    bw_rows = bench_bandwidth(T_bw, D_bw, repeats)

    print(f"\n### Layers, batch 1, D = {a.dim}, float32, backend {jax.default_backend()}\n")
    print("| layer | T | parallel tok/s | step-loop tok/s | parallel / step |")
    print("|---|---:|---:|---:|---:|")
    for r in layer_rows:
        print(f"| {r['layer']} | {r['T']} | {r['parallel_tokens_per_s']:,.0f} | {r['step_tokens_per_s']:,.0f} "
              f"| {r['speedup']:.2f}x |")
    print(f"\n### Diagonal scan vs copy ({bw_rows[0]['T']} x {bw_rows[0]['D']} float32)\n")
    print("| op | seconds | GB/s | fraction of copy |")
    print("|---|---:|---:|---:|")
    for r in bw_rows:
        print(f"| {r['op']} | {r['seconds']:.4f} | {r['GB_per_s']:.2f} | {r['fraction_of_copy']:.2f} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(dict(backend=jax.default_backend(), devices=[str(d) for d in jax.devices()], quick=a.quick,
                       layers=layer_rows, bandwidth=bw_rows), f, indent=1)


if __name__ == "__main__":
    main()
