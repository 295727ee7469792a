"""Save / load a model and its parameters to a single .npz file."""

import json

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "ssmneuro.models/1"


def save(path, model, params) -> None:
    """Write the model configuration and parameter leaves to ``path`` (.npz)."""
    from ssmneuro.models import slds

    name = type(model).__name__
    if not hasattr(slds, name):
        raise ValueError(f"save: {name} is not an LDS / SLDS / RSLDS model")
    leaves = jax.tree.leaves(params)
    header = json.dumps({"format": FORMAT, "class": name, "config": model.config()})
    np.savez(path, __header__=np.asarray(header), **{f"leaf_{i}": np.asarray(a) for i, a in enumerate(leaves)})


def load(path):
    """-> (model, params) written by ``save``."""
    from ssmneuro.models import slds

    with np.load(path, allow_pickle=False) as f:
        if "__header__" not in f:
            raise ValueError(f"{path}: not an ssmneuro model file (no header)")
        header = json.loads(str(f["__header__"]))
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown format {header.get('format')!r}, expected {FORMAT!r}")
        leaves = [f[f"leaf_{i}"] for i in range(len(f.files) - 1)]
    model = getattr(slds, header["class"])(**header["config"])
    template = model.random_params(jax.random.key(0))
    treedef = jax.tree.structure(template)
    if treedef.num_leaves != len(leaves):
        raise ValueError(f"{path}: {len(leaves)} arrays stored but the model needs {treedef.num_leaves}")
    params = jax.tree.unflatten(treedef, [jnp.asarray(a) for a in leaves])
    return model, params
