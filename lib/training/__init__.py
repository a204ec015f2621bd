from .loop import (MemberAdamW, TrainConfig, choose_lr, lr_factor, masked_loss, member_losses, resolve_device,
                   train, train_ensemble, trial_loss)
from .metrics import evaluate, evaluate_ensemble, greedy_decode, greedy_exact_match, response

__all__ = ["MemberAdamW", "TrainConfig", "choose_lr", "lr_factor", "masked_loss", "member_losses",
           "resolve_device", "train", "train_ensemble", "trial_loss", "evaluate", "evaluate_ensemble",
           "greedy_decode", "greedy_exact_match", "response"]
