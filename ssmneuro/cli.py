"""The ``ssmneuro`` command: ``fit``, ``demo``, ``select``, ``simulate``.

Errors are one line (``error: ...``, exit status 2), never a traceback: ValueError and
FileNotFoundError raised by the package are caught here, at the boundary. Anything else is a bug and is
also reported in one line; ``SSMNEURO_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="State space models for neuroscience: fit a switching model to a recording and "
                       "read its attractor report.")


def _fail(message: str):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _run(step):
    """Call ``step()``; turn package errors into one line and warnings into ``warning: ...`` lines."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = step()
        except (ValueError, FileNotFoundError) as err:
            _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
        except Exception as err:  # a bug, not a user error: still one line, the traceback on request
            if os.environ.get("SSMNEURO_DEBUG"):
                raise
            _fail(f"internal error ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                  "rerun with SSMNEURO_DEBUG=1 for the traceback and please report it")
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning):
                    typer.echo(f"warning: {str(w.message).splitlines()[0]}", err=True)
    return result


def _load(data: Path, dt: float | None, key: str | None, neurons_by_time: bool = False):
    from ssmneuro.io import load_recording

    return _run(lambda: load_recording(data, dt=dt, key=key, neurons_by_time=neurons_by_time))


@app.command()
def fit(data: Path = typer.Argument(..., help="recording: .npy/.npz/.csv/.mat (T x N), .h5 (C. elegans or --key), .nwb"),
        model: str = typer.Option("rslds", help="rslds | slds | lds"),
        states: int = typer.Option(4, help="number of discrete states K"),
        latents: int = typer.Option(4, help="latent dimensions D"),
        out: Path = typer.Option(Path("ssmneuro_fit"), help="output folder"),
        emissions: str = typer.Option("gaussian", help="gaussian | poisson | calcium"),
        dt: float = typer.Option(None, help="seconds per frame (overrides the file)"),
        iters: int = typer.Option(50, help="fitting iterations"),
        seed: int = typer.Option(0, help="random seed"),
        key: str = typer.Option(None, help="name of the traces array in .npz / .mat / .h5 files"),
        neurons_by_time: bool = typer.Option(False, help="the file stores neurons x time: transpose it")):
    """Fit a switching model and write OUT/model.npz, OUT/summary.json and OUT/report.html."""
    from ssmneuro.job import JobConfig, check_config, run_main_job

    config = _run(lambda: check_config(JobConfig(model=model, num_states=states, latent_dim=latents,
                                                 emissions=emissions, num_iters=iters, seed=seed)))
    rec = _load(data, dt, key, neurons_by_time)
    typer.echo(f"loaded {rec.describe()}")
    result = _run(lambda: run_main_job(rec, config, out, log=typer.echo))
    _print_outcome(result.summary, out)


def _print_outcome(summary: dict, out: Path):
    behaviour = summary.get("states_vs_behaviour")
    if behaviour:
        typer.echo(f"balanced accuracy of states vs behaviour: {behaviour['balanced_accuracy']:.3f}")
    la = summary.get("line_attractor")
    if la:
        typer.echo(f"line-attractor score: {la['score']:.2f} [{la['interval'][0]:.2f}, {la['interval'][1]:.2f}], "
                   f"P(score > 1) = {la['prob_above_1']:.2f}")
    typer.echo(f"report: {(Path(out) / 'report.html').resolve()}")


@app.command()
def demo(out: Path = typer.Option(Path("demo_output"), help="output folder"),
         quick: bool = typer.Option(False, help="tiny settings (seconds, for tests)")):
    """Run the main job on the simulated hypothalamus recording (and the first C. elegans worm)."""
    from ssmneuro.demo import run_demo

    reports = _run(lambda: run_demo(out, quick=quick, log=typer.echo))
    typer.echo("")
    for name, path in reports.items():
        typer.echo(f"report ({name}): {path.resolve()}")


@app.command()
def select(data: Path = typer.Argument(..., help="recording file (as for fit)"),
           states: str = typer.Option("1,2,4", help="comma-separated K values"),
           latents: str = typer.Option("2,4", help="comma-separated D values"),
           model: str = typer.Option("rslds", help="rslds | slds"),
           emissions: str = typer.Option("gaussian", help="gaussian | poisson | calcium"),
           folds: int = typer.Option(2, help="cross-validation folds"),
           iters: int = typer.Option(20, help="fitting iterations per fit"),
           out: Path = typer.Option(Path("ssmneuro_select"), help="output folder"),
           dt: float = typer.Option(None, help="seconds per frame"),
           seed: int = typer.Option(0, help="random seed"),
           key: str = typer.Option(None, help="name of the traces array in .npz / .mat / .h5 files"),
           neurons_by_time: bool = typer.Option(False, help="the file stores neurons x time: transpose it")):
    """Cross-validated choice of K and D (co-smoothing on held-out neurons and time)."""
    from ssmneuro.job import write_selection

    ks = _run(lambda: _int_list(states, "states"))
    ds = _run(lambda: _int_list(latents, "latents"))
    rec = _load(data, dt, key, neurons_by_time)
    typer.echo(f"loaded {rec.describe()}")
    table = _run(lambda: write_selection(rec, out, ks, ds, model=model, emissions=emissions,
                                         num_folds=folds, num_iters=iters, seed=seed, log=typer.echo))
    typer.echo(f"best: K = {table.best_num_states}, D = {table.best_latent_dim}")
    typer.echo(f"selection: {(Path(out) / 'selection.json').resolve()}")


@app.command()
def simulate(out: Path = typer.Argument(..., help="where to write the .npz (traces, labels, dt)"),
             neurons: int = typer.Option(40), frames: int = typer.Option(3000), seed: int = typer.Option(0)):
    """Write the simulated hypothalamus-like recording (line attractor, calcium traces) to an .npz."""
    import jax
    import numpy as np

    from ssmneuro.io import simulate_hypothalamus

    sim = _run(lambda: simulate_hypothalamus(jax.random.PRNGKey(seed), num_neurons=neurons, num_timesteps=frames))
    rec = sim.recording
    np.savez(out, traces=rec.traces[0], labels=rec.labels[0], dt=rec.dt, label_names=np.array(rec.label_names),
             latents=sim.latents)
    typer.echo(f"wrote {out} ({rec.describe()})")


def _int_list(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} {text!r} is not a comma-separated list of integers, e.g. 1,2,4") from None
    if not values or min(values) < 1:
        raise ValueError(f"--{name} {text!r} needs positive integers, e.g. 1,2,4")
    return values


def main():
    """Console entry point."""
    app(prog_name="ssmneuro")


if __name__ == "__main__":
    sys.exit(main())
