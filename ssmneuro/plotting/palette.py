"""Colour-blind-safe colours (Okabe & Ito 2008) for discrete states and labels."""

import numpy as np
from matplotlib.colors import ListedColormap

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def state_colors(num_states: int) -> list[str]:
    """One colour per discrete state (cycling after 8)."""
    return [OKABE_ITO[k % len(OKABE_ITO)] for k in range(num_states)]


def state_cmap(num_states: int) -> ListedColormap:
    """A discrete colormap with ``num_states`` entries, for images of state sequences."""
    return ListedColormap(state_colors(num_states), name=f"states{num_states}")


def get_ax(ax=None):
    """The given Axes, or a new figure's Axes."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4))
    return ax


def as_projection(projection, dim: int):
    """(centre (D,), basis (D, 2) orthonormal columns) from None (the first two axes) or a (centre, basis)."""
    if projection is None:
        basis = np.eye(dim)[:, :2]
        return np.zeros(dim), basis
    centre, basis = projection
    basis, _ = np.linalg.qr(np.asarray(basis, dtype=float))
    return np.asarray(centre, dtype=float), basis
