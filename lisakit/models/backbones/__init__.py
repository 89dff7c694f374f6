from .llava import LlavaBackbone
from .qwen2_5_vl import Qwen2_5_VLBackbone
from .qwen3_vl import Qwen3VLBackbone
from .sam2_encoder import SAM2ImageEncoder
from .sam_cache import SAMEmbeddingCache
from .sam_encoder import SAMImageEncoder

__all__ = [
    'LlavaBackbone',
    'Qwen2_5_VLBackbone',
    'Qwen3VLBackbone',
    'SAM2ImageEncoder',
    'SAMImageEncoder',
    'SAMEmbeddingCache',
]
