"""Process-wide settings a user opts into explicitly (nothing here runs at import)."""

from pathlib import Path


def enable_compilation_cache(path=None, min_compile_seconds=0.5):
    """Keep compiled XLA programs on disk, so that a new Python process (a restarted notebook, the next
    run of a script) reuses the programs of fits it has compiled before instead of compiling them again.

    The first fit of a model on data of a new shape compiles its programs (about 10-15 s on a 2-core CPU);
    with the cache, a later process fitting the same model configuration to data of the same shapes
    loads them in well under a second. This sets JAX's own persistent cache
    (``jax_compilation_cache_dir``) for the whole process; programs that compile faster than
    ``min_compile_seconds`` are not stored.

    path: cache folder (created if missing); default ``~/.cache/ssmneuro/xla``. -> the folder (Path).
    """
    import jax

    folder = Path(path) if path is not None else Path.home() / ".cache" / "ssmneuro" / "xla"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
