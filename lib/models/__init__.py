from .attention import AttentionLayer
from .lm import INITS, ModelConfig, SequenceModel, build_model
from .registry import LAYERS, ModelError, build_mixer, layer_spec, register_layer, register_mixer
from .mamba import Mamba, Mamba2, cuda_kernels_available, selective_scan_ref, ssd_scan_ref
from .zoo import B_FAMILIES, arch_layers, micro, mini, paper_b

__all__ = ["AttentionLayer", "INITS", "LAYERS", "ModelConfig", "ModelError", "SequenceModel", "build_model",
           "build_mixer", "layer_spec", "register_layer", "register_mixer",
           "Mamba", "Mamba2", "cuda_kernels_available", "selective_scan_ref", "ssd_scan_ref",
           "B_FAMILIES", "arch_layers", "micro", "mini", "paper_b"]
