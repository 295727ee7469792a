"""Parallel evaluation of a GRU: DEER, quasi-DEER, ELK, quasi-ELK against the sequential loop.

    python benchmarks/parallel_rnn.py [--quick] [--dims 4 16 64] [--lengths 1000 10000 100000]

For every (D, T) and method, in ONE run (float32, batch 1, U = 4 inputs, default tolerance 1e-5):
wall time of a jitted call (median of repeats, compile excluded), its ratio to the sequential loop
as a speed-up (sequential time / method time; < 1 is slower), iterations to converge, the compiled program's peak memory
(XLA memory_analysis: arguments + outputs + temporaries) and the float32 error of the states against
a float64 sequential loop. Configurations whose dense (T, D, D) Jacobians would exceed --dense-limit
bytes are skipped for DEER / ELK and said so. Prints a markdown table and writes
benchmarks/results/parallel_rnn.json.
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

from ssmneuro.seq.parallel_rnn import DEER, ELK, QuasiDEER, QuasiELK, Sequential, cells, evaluate

RESULTS = Path(__file__).resolve().parent / "results" / "parallel_rnn.json"
METHODS = {"Sequential": Sequential(), "DEER": DEER(), "QuasiDEER": QuasiDEER(),
           "ELK": ELK(trust=1.0), "QuasiELK": QuasiELK(trust=1.0)}
DENSE = ("DEER", "ELK")


def problem(D, T, U=4, seed=0, dtype=jnp.float32):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return cells.init_gru(k1, D, U, dtype=dtype), jnp.zeros(D, dtype), jax.random.normal(k2, (T, U), dtype)


def float64_reference(D, T):
    """The same float32 problem, evaluated sequentially in float64."""
    params, x0, inputs = problem(D, T)
    with jax.enable_x64(True):
        up = lambda a: jnp.asarray(np.asarray(a, np.float64))
        params, x0, inputs = jax.tree_util.tree_map(up, (params, x0, inputs))
        return np.asarray(evaluate(cells.gru, x0, inputs, Sequential(), params=params).states)


def peak_bytes(compiled):
    m = compiled.memory_analysis()
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def measure(method, D, T, repeats, reference):
    params, x0, inputs = problem(D, T)
    run = jax.jit(lambda p, x, u: evaluate(cells.gru, x, u, method, params=p))
    t0 = time.perf_counter()
    compiled = run.lower(params, x0, inputs).compile()
    compile_s = time.perf_counter() - t0
    sol = jax.block_until_ready(compiled(params, x0, inputs))
    times = []
    first = time.perf_counter()
    jax.block_until_ready(compiled(params, x0, inputs))
    if time.perf_counter() - first > 2.0:
        repeats = 1
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, x0, inputs))
        times.append(time.perf_counter() - t0)
    return dict(seconds=float(np.median(times)), compile_seconds=compile_s,
                iterations=int(sol.iterations), converged=bool(sol.converged), fell_back=bool(sol.fell_back),
                peak_bytes=peak_bytes(compiled),
                error_f32=float(np.max(np.abs(np.asarray(sol.states, np.float64) - reference))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="D = 4, T = 1000, one repeat (< 1 min)")
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dense-limit", type=float, default=2e8,
                        help="skip DEER/ELK when T*D*D*4 bytes (one float32 Jacobian array) exceeds this")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="skip a method at a length where its time, extrapolated linearly from the "
                             "previous length, exceeds this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.dims, args.lengths, args.repeats = [4], [1000], 1

    rows, skipped = [], []
    for D in args.dims:
        last = {}  # method -> (T, seconds) at the previous length
        for T in sorted(args.lengths):
            reference = float64_reference(D, T)
            base = None
            for name in args.methods:
                if name in DENSE and T * D * D * 4 > args.dense_limit:
                    skipped.append(f"{name} D={D} T={T}: one dense Jacobian array is {T * D * D * 4 / 1e9:.1f} GB")
                    continue
                if name in last and last[name][1] * T / last[name][0] > args.max_seconds:
                    skipped.append(f"{name} D={D} T={T}: extrapolated {last[name][1] * T / last[name][0]:.0f} s "
                                   f"per call > --max-seconds {args.max_seconds:.0f}")
                    continue
                r = dict(D=D, T=T, method=name, **measure(METHODS[name], D, T, args.repeats, reference))
                last[name] = (T, r["seconds"])
                base = r["seconds"] if name == "Sequential" else base
                r["speedup"] = base / r["seconds"] if base else None
                rows.append(r)
                save(args, rows, skipped)  # keep what is measured if a later size runs out of time
                print(f"  D={D:3d} T={T:6d} {name:10s} {r['seconds']:.4f}s speed-up x{r['speedup'] or 0:.3g} "
                      f"iters={r['iterations']} err={r['error_f32']:.1e}", flush=True)

    print(table(rows, args.methods))
    for s in skipped:
        print(f"- skipped {s}")
    save(args, rows, skipped)
    print(f"wrote {args.out}")


def save(args, rows, skipped):
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(device=str(jax.devices()[0]), platform=platform.platform(), processor=platform.processor(),
                jax=jax.__version__, quick=args.quick, dtype="float32", batch=1, input_dim=4, tol=1e-5,
                methods={name: repr(m) for name, m in METHODS.items()})
    args.out.write_text(json.dumps(dict(meta=meta, rows=rows, skipped=skipped), indent=1))


def table(rows, methods):
    """Markdown: one row per (D, T); per method 'time (speed-up = sequential time / time, iterations)'."""
    head = "| D | T | " + " | ".join(methods) + " | peak MB (" + ", ".join(m for m in methods) + ") | f32 error (max) |"
    lines = [head, "|" + "---|" * (len(methods) + 4)]
    for (D, T) in sorted({(r["D"], r["T"]) for r in rows}):
        by = {r["method"]: r for r in rows if r["D"] == D and r["T"] == T}
        cells_ = []
        for m in methods:
            r = by.get(m)
            if r is None:
                cells_.append("skipped")
            elif m == "Sequential":
                cells_.append(f"{r['seconds'] * 1e3:.1f} ms")
            else:
                flag = "" if r["converged"] else " NOT CONVERGED"
                cells_.append(f"{r['seconds'] * 1e3:.1f} ms (x{r['speedup']:.2g}, {r['iterations']} it){flag}")
        mem = ", ".join(f"{by[m]['peak_bytes'] / 1e6:.1f}" if m in by and by[m]["peak_bytes"] else "-" for m in methods)
        err = ", ".join(f"{by[m]['error_f32']:.0e}" if m in by else "-" for m in methods)
        lines.append(f"| {D} | {T} | " + " | ".join(cells_) + f" | {mem} | {err} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
