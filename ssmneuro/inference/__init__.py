"""The shared inference core: pure, jit-able functions; knows nothing of models, files or plots."""

from ssmneuro.inference.scan import dense_scan, diagonal_scan
from ssmneuro.inference.lgssm import (LGSSMFiltered, LGSSMParams, LGSSMPosterior, kalman_filter,
                                      kalman_posterior_sample, kalman_smoother)
from ssmneuro.inference.block_tridiag import (BlockTridiagPosterior, block_tridiag_posterior,
                                              block_tridiag_sample, block_tridiag_solve)
from ssmneuro.inference.hmm import (HMMFiltered, HMMPosterior, hmm_filter, hmm_posterior_sample,
                                    hmm_smoother, hmm_viterbi)
from ssmneuro.inference.trials import as_trials, bucket_trials, map_trials, pad_trials, unpad, valid_mask
