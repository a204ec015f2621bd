"""Paper A's constructed hybrids (Theorems 4.3 and 4.6): ordinary lib.models.SequenceModel
instances whose every weight is set by hand from the task sizes, no training.

    from lib.constructions import build_selective_copy, build_decode_recall
    model = build_selective_copy(num_vocab=26, numbers=5, length=100)   # Mamba -> attention
    model.construction   # window, d_model, state size, layout of the residual rows, ...
"""
from .decode_recall import build_decode_recall
from .evaluate import (constructions_table, eval_decode_recall, eval_selective_copy, selective_copy_adversarial,
                       selective_copy_oracle)
from .selective_copy import build_selective_copy
from ._common import last_position_logits, last_position_predictions

__all__ = ["build_selective_copy", "build_decode_recall", "constructions_table", "eval_selective_copy",
           "eval_decode_recall", "selective_copy_adversarial", "selective_copy_oracle", "last_position_logits",
           "last_position_predictions"]
