"""ssmneuro.analysis: numbers from fitted models (and from any drift or map).

fixed_points   find_fixed_points (any map / drift), classification, Jacobians, eigenvalues
attractors     find_slow_points, find_continuous_attractors (line and ring attractors)
linear         per-state fixed points, time constants, line-attractor score from arrays
score          line_attractor_score(model, params, dt, data, key) with its distribution
dynamics_posterior  conjugate posterior over per-state dynamics given posterior latents
variance       variance explained per latent dimension, direction and discrete state
perturbation   on-/off-manifold neuron ranking, pulse responses and decay times
states         state_fixed_points(model, params): real vs virtual fixed points, model flow
toy_systems    NASCAR, bistable, ring and line-attractor systems, a plain-array rSLDS sampler
"""

from ssmneuro.analysis.attractors import ContinuousAttractor, find_continuous_attractors, find_slow_points
from ssmneuro.analysis.fixed_points import FixedPoints, classify, find_fixed_points
from ssmneuro.analysis.linear import (StateDynamics, affine_fixed_point, line_attractor_score_from_eigenvalues,
                                      slowest_mode, state_dynamics, time_constants)
from ssmneuro.analysis.perturbation import (NeuronRanking, PulseResponse, decay_time, off_manifold_set,
                                            pulse_response, rank_neurons)
from ssmneuro.analysis.score import LineAttractorScore, line_attractor_score, summarize_scores
from ssmneuro.analysis.states import StateFixedPoints, mixture_map, model_map, state_fixed_points
from ssmneuro.analysis.variance import VarianceExplained, variance_explained, variance_explained_arrays

__all__ = [
    "ContinuousAttractor", "FixedPoints", "LineAttractorScore", "NeuronRanking", "PulseResponse",
    "StateDynamics", "StateFixedPoints", "VarianceExplained",
    "affine_fixed_point", "classify", "decay_time", "find_continuous_attractors", "find_fixed_points",
    "find_slow_points", "line_attractor_score", "line_attractor_score_from_eigenvalues", "mixture_map",
    "model_map", "off_manifold_set", "pulse_response", "rank_neurons", "slowest_mode", "state_dynamics",
    "state_fixed_points", "summarize_scores", "time_constants", "variance_explained", "variance_explained_arrays",
]
