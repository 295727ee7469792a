"""``ssmneuro demo``: the main job on the embedded simulated recording and on the first C. elegans worm.

The settings below are chosen so that the whole demo finishes within 5 minutes on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from ssmneuro.io import celegans_files, read_celegans, simulate_hypothalamus
from ssmneuro.job import JobConfig, run_main_job

SIMULATED = dict(num_neurons=40, num_timesteps=2000)
SIMULATED_CONFIG = JobConfig(model="rslds", num_states=2, latent_dim=3, emissions="gaussian", num_iters=30)
CELEGANS_CONFIG = JobConfig(model="rslds", num_states=4, latent_dim=4, emissions="gaussian", num_iters=30)
QUICK = dict(num_iters=3, score_samples=20)


def run_demo(out_dir, quick: bool = False, log=print, seed: int = 0) -> dict[str, Path]:
    """Run the demo; returns ``{name: path of report.html}``."""
    out_dir = Path(out_dir)
    reports = {}
    sizes = dict(num_neurons=15, num_timesteps=300) if quick else SIMULATED
    sim = simulate_hypothalamus(jax.random.PRNGKey(seed), **sizes)
    config = SIMULATED_CONFIG._replace(seed=seed, **(QUICK if quick else {}))
    log("== simulated hypothalamus-like recording (line attractor, calcium indicator)")
    true_tau = ", ".join(f"{t:.3g}" for t in sim.time_constants)
    log(f"   true time constants: {true_tau} s")
    true_score = float(np.log2(sim.time_constants[0] / sim.time_constants[1]))
    truth = (f"Simulated recording (ssmneuro.io.simulate_hypothalamus, seed {seed}): the true dynamics have time "
             f"constants {true_tau} s, a line attractor with score {true_score:.2f}; the behaviour labels mark "
             "when the simulated intruder is present.")
    run_main_job(sim.recording, config, out_dir / "simulated", log=log, context=[truth])
    reports["simulated"] = out_dir / "simulated" / "report.html"
    worms = celegans_files()
    if worms:
        rec = read_celegans(worms[0])
        if quick:
            rec = rec._replace(traces=[rec.traces[0][:200, :20]], labels=[rec.labels[0][:200]], masks=None)
        log(f"== C. elegans worm {rec.name} (Dag et al. 2023)")
        config = CELEGANS_CONFIG._replace(seed=seed, **(QUICK if quick else {}))
        run_main_job(rec, config, out_dir / f"celegans-{rec.name}", log=log)
        reports["celegans"] = out_dir / f"celegans-{rec.name}" / "report.html"
    else:
        log("(../shared/data is absent: skipping the C. elegans worm)")
    return reports


if __name__ == "__main__":
    run_demo("demo_output")
