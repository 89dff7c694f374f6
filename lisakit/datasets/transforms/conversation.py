"""Removed pipeline steps whose work moved to the backbone's processor (issue 12).

Tokenization and CLIP preprocessing are the backbone's conventions: they are set once in
``model.backbone.processor`` (``lisakit.models.processors``) and run in the data
preprocessor. A config that still lists these steps fails when its pipeline is built, with
the fix named.
"""

from __future__ import annotations

from lisakit.registry import TRANSFORMS

#: The fix each removed step's error names.
MIGRATION_HINTS = {
    'TokenizeConversation': (
        'move its template / max_length / layout (and tokenizer, text_encoding, '
        'use_im_start_end, dialogue_query_types, seg_token) to model.backbone.processor and '
        "delete this step (num_image_features now comes from the backbone's model config)"
    ),
    'CLIPPreprocess': (
        'move its backend (if not the default "pil") to model.backbone.processor and delete '
        "this step (the CLIP size, mean and std now come from the backbone's model config "
        "or its pretrained folder's preprocessor_config.json)"
    ),
}


class RemovedStep:
    """A pipeline step that now lives in the backbone's processor: building it raises."""

    def __init__(self, *args, **kwargs) -> None:
        name = type(self).__name__
        raise ValueError(
            f'The pipeline step {name!r} was removed: the backbone now renders, tokenizes and '
            f'preprocesses the samples (model.backbone.processor). Fix: {MIGRATION_HINTS[name]}. '
            'Pipelines end with SAMPreprocess, mask transforms and PackLISAInputs '
            '(docs/config.md).'
        )


@TRANSFORMS.register_module()
class TokenizeConversation(RemovedStep):
    """Removed: see :class:`lisakit.models.processors.LlavaProcessor`."""


@TRANSFORMS.register_module()
class CLIPPreprocess(RemovedStep):
    """Removed: see :class:`lisakit.models.processors.LlavaProcessor`."""
