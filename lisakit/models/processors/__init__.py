"""VLM processors (registered in ``lisakit.registry.PROCESSORS``): a backbone's text and
image conventions, applied to backbone-neutral samples by the data preprocessor."""

from .base import LAYOUTS, BaseVLProcessor
from .builder import build_processor, fill_facts, processor_config
from .llava_processor import LlavaProcessor
from .qwen2_5_vl_processor import Qwen2_5_VLProcessor
from .qwen3_vl_processor import Qwen3VLProcessor

__all__ = [
    'BaseVLProcessor',
    'LAYOUTS',
    'LlavaProcessor',
    'Qwen2_5_VLProcessor',
    'Qwen3VLProcessor',
    'build_processor',
    'fill_facts',
    'processor_config',
]
