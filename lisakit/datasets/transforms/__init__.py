"""Data transforms (registered in ``lisakit.registry.TRANSFORMS``)."""

from .conversation import CONVERSATION_TEMPLATES, ConversationTemplate, TokenizeConversation
from .formatting import PackLISAInputs
from .image import CLIPPreprocess, SAMPreprocess
from .loading import LoadImageFromFile

__all__ = [
    'CONVERSATION_TEMPLATES',
    'CLIPPreprocess',
    'ConversationTemplate',
    'LoadImageFromFile',
    'PackLISAInputs',
    'SAMPreprocess',
    'TokenizeConversation',
]
