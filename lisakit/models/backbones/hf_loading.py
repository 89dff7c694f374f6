"""Load a Hugging Face LLaVA from a local folder, strictly and offline.

``pretrained`` is a local folder, or a hub id whose snapshot is already in the local
Hugging Face cache. Missing weights and shape mismatches raise errors naming the
folder and the keys instead of being re-initialised silently.
"""

from __future__ import annotations

import json
import os
import re
from typing import Optional

import torch
from mmengine.logging import print_log
from transformers import BitsAndBytesConfig, LlavaConfig, PreTrainedModel

from .projectors import PROJECTOR_CONFIG_KEY, llava_class, projector_type_of

#: ``owner/name``: how a Hugging Face hub id looks.
HUB_ID_RE = re.compile(r'^[\w.-]+/[\w.-]+$')
#: Keys of an unconverted LLaVA-v1 / LISA ``config.json`` (LLaMA fields + LLaVA's ``mm_*``).
LLAVA_V1_KEYS = ('mm_hidden_size', 'mm_vision_select_layer', 'mm_use_im_start_end')
#: How many offending keys an error message lists.
MAX_LISTED_KEYS = 5


def resolve_pretrained(pretrained: str, what: str = 'model.backbone.pretrained') -> str:
    """The local folder of ``pretrained`` (a folder, or a hub id in the local HF cache).

    Raises:
        FileNotFoundError: If it is neither, saying how to get a local copy.
    """
    if os.path.isdir(pretrained):
        return pretrained
    if HUB_ID_RE.match(pretrained) and not os.path.exists(pretrained):
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(pretrained, local_files_only=True)
        except Exception as err:  # LocalEntryNotFoundError, or offline-mode errors
            raise FileNotFoundError(
                f'{what}={pretrained!r} is not a local folder, and as a Hugging Face hub id it '
                'has no local copy in the Hugging Face cache; lisakit never downloads. Create '
                f'the folder, or fetch the model once (`hf download {pretrained} --local-dir '
                f'DIR`) and set {what}=DIR. ({type(err).__name__})'
            ) from None
    raise FileNotFoundError(
        f'{what}={pretrained!r} is not a local folder. lisakit never downloads: point it to '
        'a Hugging Face LLaVA folder on disk (config.json + *.safetensors).'
    )


def read_llava_config(folder: str) -> LlavaConfig:
    """The ``LlavaConfig`` of a local Hugging Face LLaVA folder, checked (a clear error for a
    missing config.json or an unconverted LLaVA-v1 / LISA folder)."""
    path = os.path.join(folder, 'config.json')
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{path} does not exist: model.backbone.pretrained must be a Hugging Face LLaVA '
            'folder written by save_pretrained (config.json + weights).'
        )
    with open(path, encoding='utf-8') as f:
        raw = json.load(f)
    if 'text_config' not in raw and any(k in raw for k in LLAVA_V1_KEYS):
        raise ValueError(
            f'{path} is an original LLaVA-v1 / LISA checkpoint (LLaMA config with mm_* keys), '
            'not a Hugging Face LLaVA folder. Convert it first: python '
            'tools/model_converters/lisa_to_lisakit.py SRC_DIR OUT_DIR --vision-tower CLIP_DIR '
            '(LISA) or tools/model_converters/llava_v1_to_hf.py SRC_DIR CLIP_DIR OUT_DIR '
            '(LLaVA-v1).'
        )
    return LlavaConfig.from_pretrained(folder, local_files_only=True)


def _apply_overrides(config: LlavaConfig, overrides: dict, folder: str) -> str:
    """Set config overrides; the projector type must agree with the folder's."""
    stored = projector_type_of(config)
    wanted = overrides.get(PROJECTOR_CONFIG_KEY, stored)
    if wanted != stored:
        raise ValueError(
            f'model.backbone.projector_type={wanted!r} but {folder}/config.json holds a '
            f'{stored!r} projector ({PROJECTOR_CONFIG_KEY!r} key, default mlp2x_gelu). Set '
            f'projector_type={stored!r} (or None) to load this folder.'
        )
    for key, value in overrides.items():
        setattr(config, key, value)
    return stored


def _check_loading_info(info: dict, folder: str) -> None:
    """Raise on missing or mis-shaped weights; warn about unused ones."""
    mismatched = sorted(info.get('mismatched_keys') or [], key=lambda m: m[0])
    if mismatched:
        listed = '; '.join(
            f'{k}: checkpoint {tuple(a)} vs model {tuple(b)}'
            for k, a, b in mismatched[:MAX_LISTED_KEYS]
        )
        raise ValueError(
            f'{folder}: {len(mismatched)} weights do not fit the model built from its '
            f'config.json and the backbone options [{listed}]. Check that config.json belongs '
            'to these weights and that vision_feature_layer / projector_type match them.'
        )
    missing = sorted(info.get('missing_keys') or [])
    if missing:
        raise ValueError(
            f'{folder} lacks {len(missing)} weights of the model, e.g. '
            f'{missing[:MAX_LISTED_KEYS]}. If they are multi_modal_projector keys, set '
            "model.backbone.projector_type ('linear' for LLaVA-v1 / LISA, 'mlp2x_gelu' for "
            'LLaVA-1.5); otherwise the folder is incomplete.'
        )
    unexpected = sorted(info.get('unexpected_keys') or [])
    if unexpected:
        print_log(
            f'{folder}: {len(unexpected)} weights are not used by the model, e.g. '
            f'{unexpected[:MAX_LISTED_KEYS]}.',
            logger='current',
            level='WARNING',
        )


def load_pretrained_llava(
    pretrained: str,
    overrides: dict,
    dtype: torch.dtype,
    bnb: Optional[BitsAndBytesConfig] = None,
) -> PreTrainedModel:
    """Load a local Hugging Face LLaVA folder with lisakit's config overrides.

    Args:
        pretrained: Local folder, or a hub id with a local cached copy.
        overrides: ``LlavaConfig`` attributes to set (``projector_type``,
            ``vision_feature_layer``, ``vision_feature_select_strategy``).
        dtype: Parameter dtype.
        bnb: Optional bitsandbytes config (quantize while loading).

    Returns:
        The model (``LlavaForConditionalGeneration`` or its linear-projector subclass).

    Raises:
        FileNotFoundError: For a missing folder / config.json or an uncached hub id.
        ValueError: For missing or mis-shaped weights, or a projector type mismatch.
    """
    folder = resolve_pretrained(pretrained)
    config = read_llava_config(folder)
    projector_type = _apply_overrides(config, overrides, folder)
    model, info = llava_class(projector_type).from_pretrained(
        folder,
        config=config,
        local_files_only=True,
        dtype=dtype,
        quantization_config=bnb,
        output_loading_info=True,
        ignore_mismatched_sizes=True,  # reported below with the folder and keys
    )
    _check_loading_info(info, folder)
    return model
