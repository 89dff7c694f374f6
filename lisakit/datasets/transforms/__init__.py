"""Data transforms (registered in ``lisakit.registry.TRANSFORMS``)."""

from .conversation import CONVERSATION_TEMPLATES, ConversationTemplate, TokenizeConversation
from .formatting import PackLISAInputs
from .image import CLIPPreprocess, SAMPreprocess
from .loading import LoadImageFromFile
from .masks import LoadMaskAnnotations

__all__ = [
    'CONVERSATION_TEMPLATES',
    'CLIPPreprocess',
    'ConversationTemplate',
    'LoadImageFromFile',
    'LoadMaskAnnotations',
    'PackLISAInputs',
    'SAMPreprocess',
    'TokenizeConversation',
]
