"""High-level APIs for scripts and demos."""

from .inference import inference_model, init_model

__all__ = ['inference_model', 'init_model']
