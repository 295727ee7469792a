"""ssmneuro.plotting: figures (matplotlib; every function takes ax=None and returns the Axes).

Colour-blind-safe colours (Okabe-Ito) for discrete states; savefig(".svg" / ".pdf") for vector export.
"""

from ssmneuro.plotting.attractor import (plot_neuron_loadings, plot_pulse_responses, plot_score_distribution, plot_time_constants,
                                         plot_variance_explained)
from ssmneuro.plotting.flow import flow_on_grid, plot_fixed_points, plot_flow_field, plot_model_flow
from ssmneuro.plotting.palette import OKABE_ITO, state_cmap, state_colors
from ssmneuro.plotting.states import plot_state_raster
from ssmneuro.plotting.trajectories import plot_latent_trajectory, slow_mode_projection

__all__ = [
    "OKABE_ITO", "flow_on_grid", "plot_neuron_loadings", "plot_fixed_points", "plot_flow_field", "plot_latent_trajectory",
    "plot_model_flow", "plot_pulse_responses", "plot_score_distribution", "plot_state_raster",
    "plot_time_constants", "plot_variance_explained", "slow_mode_projection", "state_cmap", "state_colors",
]
