from .llava import LlavaBackbone
from .sam_cache import SAMEmbeddingCache
from .sam_encoder import SAMImageEncoder

__all__ = ['LlavaBackbone', 'SAMImageEncoder', 'SAMEmbeddingCache']
