"""Experiment: variants of the parallel Kalman smoother's combine steps, timed against dynamax in one run.

    python benchmarks/kalman_combine_variants.py [D,N,T ...]      (default 8,50,100000; BUDGET=150 seconds of compiling)

Swaps ``filter_combine``/``smoother_combine`` of ``ssmneuro.inference.lgssm_parallel`` for versions whose
small products are library dots or fused multiply-sums and whose solve with M = I + C_i J_j is the library's
batched LU (twice, or factored once), and runs the library's own combine (Woodbury, one Cholesky factor) under
both scan schedules ("tree", "blocked"); checks each against dynamax's parallel smoother and times them all
side by side (best of up to 20 interleaved rounds). Run on one H200 on 2026-11-30, when the library's combine
was the LU one and an unrolled-elimination variant (since removed) was also timed: every variant within 7%
of the others (6.6-6.8 ms against dynamax's 6.3 ms at the default cell), recorded in
benchmarks/results/gpu/kalman_variants.json. That run did not clear JAX's caches between variants, so the
inner jit of ``kalman_smoother`` reused the first variant's trace: all six timings are of the first variant
(the LU combine), and the spelling of the combine is in fact untested on the GPU.
"""
import sys, time, json
sys.path.insert(0, "benchmarks")
import jax, jax.numpy as jnp
import inference as b
import ssmneuro.inference.lgssm_parallel as lp
from ssmneuro.inference.lgssm import kalman_smoother, kalman_filter

def fm(a, c):
    return jnp.sum(a[..., :, :, None] * c[..., None, :, :], -2)
def mv(a, v):
    return jnp.sum(a * v[..., None, :], -1)
mT = lambda x: jnp.swapaxes(x, -1, -2)
dot = lambda a, c: a @ c
dotv = lambda a, v: (a @ v[..., None])[..., 0]

def make(mm, mvv, solve2):
    def filter_combine(earlier, later):
        Ai, bi, Ci, etai, Ji = earlier
        Aj, bj, Cj, etaj, Jj = later
        D = bi.shape[-1]
        M = jnp.eye(D, dtype=Ci.dtype) + mm(Ci, Jj)
        fwd_rhs = jnp.concatenate([Ai, Ci, (bi + mvv(Ci, etaj))[..., None]], -1)
        bwd_rhs = jnp.concatenate([mm(Jj, Ai), (etaj - mvv(Jj, bi))[..., None]], -1)
        fwd, bwd = solve2(M, fwd_rhs, bwd_rhs)
        MA, MC, Mb = fwd[..., :D], fwd[..., D:2 * D], fwd[..., 2 * D]
        MJA, Meta = bwd[..., :D], bwd[..., D]
        A = mm(Aj, MA)
        bb = mvv(Aj, Mb) + bj
        C = lp.symmetrize(mm(mm(Aj, MC), mT(Aj)) + Cj)
        eta = mvv(mT(Ai), Meta) + etai
        J = lp.symmetrize(mm(mT(Ai), MJA) + Ji)
        return A, bb, C, eta, J
    def smoother_combine(later, earlier):
        El, gl, Ll = later
        Ee, ge, Le = earlier
        return mm(Ee, El), mvv(Ee, gl) + ge, lp.symmetrize(mm(mm(Ee, Ll), mT(Ee)) + Le)
    return filter_combine, smoother_combine

lapack2 = lambda M, r1, r2: (jnp.linalg.solve(M, r1), jnp.linalg.solve(mT(M), r2))
def lu2(M, r1, r2):
    lu_piv = jax.scipy.linalg.lu_factor(M)
    return jax.scipy.linalg.lu_solve(lu_piv, r1, trans=0), jax.scipy.linalg.lu_solve(lu_piv, r2, trans=1)

LIBRARY = (lp.filter_combine, lp.smoother_combine)
VARIANTS = {  # name: (filter_combine, smoother_combine, schedule)
    "woodbury (library), tree": LIBRARY + ("tree",),
    "woodbury (library), blocked": LIBRARY + ("blocked",),
    "lapack_solve+dot, tree": make(dot, dotv, lapack2) + ("tree",),
    "lapack_solve+fused, tree": make(fm, mv, lapack2) + ("tree",),
    "lu_once+dot, tree": make(dot, dotv, lu2) + ("tree",),
    "lu_once+fused, tree": make(fm, mv, lu2) + ("tree",),
}
cells = [tuple(int(v) for v in c.split(",")) for c in sys.argv[1:]] or [(8, 50, 100000)]
deadline = time.time() + float(__import__("os").environ.get("BUDGET", "150"))
out = []
for D, N, T in cells:
    params, y = b.make_problem(D, N, T)
    ref = jax.block_until_ready(b.DYNAMAX["parallel_smoother"](b.dynamax_params(params), y))
    calls, names = [(b.DYNAMAX["parallel_smoother"], (b.dynamax_params(params), y))], ["dynamax"]
    for name, (fc, sc, schedule) in VARIANTS.items():
        if time.time() > deadline:
            break
        lp.filter_combine, lp.smoother_combine = fc, sc
        jax.clear_caches()  # else kalman_smoother's inner jit reuses the first variant's trace
        fn = jax.jit(lambda p, yy, s=schedule: kalman_smoother(p, yy, parallel=s).smoothed_means)
        t0 = time.time(); compiled = fn.lower(params, y).compile(); tc = time.time() - t0
        got = jax.block_until_ready(compiled(params, y))
        print(f"{name}: compile {tc:.1f} s, max|diff| vs dynamax {float(jnp.max(jnp.abs(got - ref))):.2g}", flush=True)
        calls.append((compiled, (params, y))); names.append(name)
    res = b.timeit(calls, min_total=3.0, max_reps=20)
    for name, (t, _) in zip(names, res):
        row = dict(D=D, N=N, T=T, variant=name, seconds=t, dynamax_over_this=res[0][0] / t)
        out.append(row); print(json.dumps(row), flush=True)
json.dump(out, open(__import__("os").environ.get("OUTJSON", "kalman_variants.json"), "w"), indent=1)
