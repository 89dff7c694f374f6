"""High-level APIs for scripts and demos."""

from .export import export_model, load_export
from .inference import inference_model, init_model, init_model_from_export

__all__ = ['export_model', 'inference_model', 'init_model', 'init_model_from_export', 'load_export']
