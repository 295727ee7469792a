"""rSLDS on the C. elegans whole-brain recordings (Dag et al. 2023): do unsupervised states line up with
forward / reversal locomotion?

    python benchmarks/celegans.py [--quick] [--iters 50] [--seed 0]

Per worm: RSLDS(K=3, D=4, recurrent transitions, Gaussian emissions) on the z-scored traces
(gcamp/trace_array), Laplace-EM; each state labelled by the majority behaviour of its frames
(behavior/reversal_vec); balanced accuracy = mean(TPR, TNR). Prints a markdown table, writes
benchmarks/results/celegans.json. Peer (lindermanlab/ssm rSLDS, same settings, 50 iterations, from the
issue; not installable here): 0.83, 0.81, 0.58, 0.85, 0.78 (mean 0.77), 10-14 s per worm on this CPU.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celegans-dag2023"
PEER_SCORES = [0.83, 0.81, 0.58, 0.85, 0.78]


def load_worm(path):
    """-> (traces (T, N) float, reversal (T,) int)."""
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["gcamp/trace_array"][:], float), np.asarray(f["behavior/reversal_vec"][:], int)


def majority_balanced_accuracy(states, labels):
    """Label each state by the majority label of its frames; balanced accuracy of that labelling."""
    pred = np.zeros_like(labels)
    for k in np.unique(states):
        pred[states == k] = int(labels[states == k].mean() > 0.5)
    tpr = np.mean(pred[labels == 1] == 1) if np.any(labels == 1) else np.nan
    tnr = np.mean(pred[labels == 0] == 0) if np.any(labels == 0) else np.nan
    return 0.5 * (tpr + tnr)


def fit_worm(traces, seed=0, num_iters=50, num_states=3, latent_dim=4):
    import jax

    from ssmneuro.models import RSLDS

    model = RSLDS(num_states, latent_dim, traces.shape[1], transitions="recurrent")
    t0 = time.perf_counter()
    result = model.fit(traces, key=jax.random.key(seed), num_iters=num_iters, verbose=False)
    seconds = time.perf_counter() - t0
    states = np.argmax(result.posterior[0].discrete_probs, -1)
    return states, seconds, result


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one worm, 10 iterations")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    files = sorted(DATA.glob("*.h5"))
    if not files:
        raise SystemExit(f"no data in {DATA}")
    iters = 10 if args.quick else args.iters
    if args.quick:
        files = files[:1]
    rows = []
    for i, path in enumerate(files):
        traces, rev = load_worm(path)
        states, seconds, result = fit_worm(traces, args.seed, iters)
        ba = majority_balanced_accuracy(states, rev)
        rows.append(dict(worm=path.stem, T=traces.shape[0], N=traces.shape[1], balanced_accuracy=float(ba),
                         seconds=seconds, rejected=len(result.rejected), peer=PEER_SCORES[i]))
        print(f"{path.stem}: BA {ba:.3f}  {seconds:.1f} s", flush=True)
    print("\n| worm | T | N | balanced accuracy | peer (ssm) | fit seconds (incl. init + compile) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['worm']} | {r['T']} | {r['N']} | {r['balanced_accuracy']:.3f} | {r['peer']:.2f} | {r['seconds']:.1f} |")
    mean_ba = float(np.mean([r["balanced_accuracy"] for r in rows]))
    print(f"| mean | | | {mean_ba:.3f} | {np.mean(PEER_SCORES[:len(rows)]):.2f} | "
          f"{np.mean([r['seconds'] for r in rows]):.1f} |")
    out = Path(__file__).resolve().parent / "results" / "celegans.json"
    out.write_text(json.dumps(dict(iters=iters, seed=args.seed, rows=rows, mean_balanced_accuracy=mean_ba), indent=1))


if __name__ == "__main__":
    main()
