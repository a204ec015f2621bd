from .loop import TrainConfig, choose_lr, lr_factor, masked_loss, resolve_device, train
from .metrics import evaluate, greedy_decode, greedy_exact_match, response

__all__ = ["TrainConfig", "choose_lr", "lr_factor", "masked_loss", "resolve_device", "train", "evaluate",
           "greedy_decode", "greedy_exact_match", "response"]
