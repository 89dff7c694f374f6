"""High-level APIs for scripts and demos."""

from .export import export_model, load_export
from .inference import (
    PRECISIONS,
    inference,
    inference_config,
    inference_model,
    init_model,
    init_model_from_export,
)

__all__ = [
    'PRECISIONS',
    'export_model',
    'inference',
    'inference_config',
    'inference_model',
    'init_model',
    'init_model_from_export',
    'load_export',
]
