"""Data transforms (registered in ``lisakit.registry.TRANSFORMS``)."""

from .conversation import CLIPPreprocess, TokenizeConversation
from .formatting import PackLISAInputs
from .image import SAMPreprocess
from .loading import LoadImageFromFile
from .masks import LoadMaskAnnotations

__all__ = [
    'CLIPPreprocess',
    'LoadImageFromFile',
    'LoadMaskAnnotations',
    'PackLISAInputs',
    'SAMPreprocess',
    'TokenizeConversation',
]
