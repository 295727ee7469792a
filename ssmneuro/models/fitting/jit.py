"""``jax.jit`` for the fitting programs, compiled on the CPU with options that make XLA 2-3x faster to compile.

A fit's programs (the initialisation and one EM or Laplace-EM iteration) are large, and on the CPU their
compilation, not their run, is most of a first fit: on a 146-neuron C. elegans recording, 27 s of a 31 s fit
(K = 3, D = 4, 50 iterations). Two XLA options cut that to 9-11 s:

- ``xla_cpu_use_fusion_emitters=False``: loop fusions are emitted by XLA's older elemental emitter, which
  compiles about twice as fast as the MLIR fusion emitters and ran these programs as fast;
- ``xla_backend_optimization_level=1``: LLVM's -O1 instead of -O3.

Measured by ``benchmarks/rslds.py --sections nascar,worm`` (one core): NASCAR (T = 10,000, 50 iterations)
26.6 -> 14.7 s per fit, 0.044 -> 0.040 s per iteration; the worm 36.3 -> 15.6 s per fit, 0.010 -> 0.014 s
per iteration. On the worm the 21 s saved outweigh the 4 ms per iteration lost for fits of up to about 5,000
iterations (on NASCAR there is no loss). The options are compile-time only and per program (no process-wide
flag); off the CPU the default options are used.
"""

from __future__ import annotations

import functools

import jax

CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


def fitting_jit(fun=None, **jit_kwargs):
    """``jax.jit(fun, **jit_kwargs)``, with ``CPU_COMPILER_OPTIONS`` when JAX's default backend is the CPU.

    Usable as ``@fitting_jit`` or ``@partial(fitting_jit, static_argnums=(0,))``. The returned function also
    has ``lower`` (for ahead-of-time compilation). Called inside another trace (JAX allows compiler options only
    on the outermost jit), it is the plain ``jax.jit``, inlined into the outer program, whose options apply.
    """
    if fun is None:
        return functools.partial(fitting_jit, **jit_kwargs)
    on_cpu = jax.jit(fun, compiler_options=CPU_COMPILER_OPTIONS, **jit_kwargs)
    elsewhere = jax.jit(fun, **jit_kwargs)

    def pick(args, kwargs):
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((args, kwargs)))
        return on_cpu if jax.default_backend() == "cpu" and not traced else elsewhere

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return pick(args, kwargs)(*args, **kwargs)

    call.lower = lambda *args, **kwargs: pick(args, kwargs).lower(*args, **kwargs)
    return call
