"""Parallel evaluation of nonlinear RNNs: DEER, quasi-DEER, ELK and quasi-ELK on associative scans.

    from ssmneuro.seq.parallel_rnn import evaluate, DEER, cells
    params = cells.init_gru(key, 16, 3)
    sol = evaluate(cells.gru, x0, inputs, DEER(), params=params)   # sol.states (T, 16)
"""

from ssmneuro.seq.parallel_rnn import cells
from ssmneuro.seq.parallel_rnn.evaluate import evaluate
from ssmneuro.seq.parallel_rnn.methods import DEER, ELK, QuasiDEER, QuasiELK, Sequential
from ssmneuro.seq.parallel_rnn.solver import RNNSolution

__all__ = ["evaluate", "RNNSolution", "Sequential", "DEER", "QuasiDEER", "ELK", "QuasiELK", "cells"]
