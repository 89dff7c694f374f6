"""Convert an original LLaVA-v1 release (``LlavaLlamaForCausalLM``, e.g. LLaVA-Lightning-7B-v1-1,
the base LISA trains from) into a Hugging Face LLaVA folder.

LLaVA-v1's checkpoints are LISA's without SAM and ``text_hidden_fcs``: LLaMA weights,
``model.mm_projector`` (one Linear) and, in some releases, the CLIP tower under
``model.vision_tower.vision_tower.``; the key mapping is LISA's
(:mod:`lisakit.models.converters.lisa_layout`). The output folder (see
:func:`convert_llava_v1_checkpoint`) is what ``LlavaBackbone(pretrained=OUT_DIR,
projector_type='linear')`` loads: ``config.json`` (``projector_type='linear'``, CLIP
config of ``CLIP_DIR``, ``vision_feature_layer`` from ``mm_vision_select_layer``),
``model*.safetensors`` (LLaMA + projector + CLIP tower) and the tokenizer with lisakit's
``<image>`` placeholder (and ``<im_start>`` / ``<im_end>`` when the model uses them).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Optional

import torch
from transformers import PreTrainedTokenizerBase

from lisakit.tokenizers import IM_END_TOKEN, IM_START_TOKEN
from lisakit.utils.io import dump_json_atomic

from .checkpoint_io import read_state_dict
from .lisa_layout import LLAVA_PREFIX, MAX_LISTED, ConversionReport, map_keys
from .lisa_official import (
    DEFAULT_SHARD_SIZE,
    EMBED_KEYS,
    HF_CONFIG_FILE,
    complete_llava,
    lisakit_tokenizer,
    write_llava,
)

#: The report written next to the weights.
LLAVA_INFO_FILE = 'conversion_info.json'
#: LLaVA's default when ``config.json`` does not say (``getattr(config, ..., False)``).
DEFAULT_IM_START_END = False


def _read_source_config(src_dir: str, clip_dir: str) -> dict:
    """The LLaVA-v1 ``config.json``, after one clear error for a missing source / CLIP folder
    or config.json."""
    if not os.path.isdir(src_dir):
        raise FileNotFoundError(
            f'LLaVA-v1 folder {src_dir!r} does not exist; pass a local copy of the LLaVA-v1 '
            'model (e.g. LLaVA-Lightning-7B-v1-1: config.json, tokenizer, weights).'
        )
    if not os.path.isdir(clip_dir):
        raise FileNotFoundError(
            f'CLIP folder {clip_dir!r} does not exist; pass a local copy of the tower named by '
            "the model's mm_vision_tower (openai/clip-vit-large-patch14 for LLaVA-v1)."
        )
    for folder, what in ((src_dir, 'an original LLaVA-v1'), (clip_dir, 'a Hugging Face CLIP')):
        if not os.path.isfile(os.path.join(folder, HF_CONFIG_FILE)):
            raise FileNotFoundError(
                f'{folder} has no {HF_CONFIG_FILE}; expected {what} model folder.'
            )
    with open(os.path.join(src_dir, HF_CONFIG_FILE), encoding='utf-8') as f:
        return json.load(f)


def _llava_weights(state: dict, src_dir: str) -> tuple[dict, dict]:
    """The LLaVA weights under Hugging Face LLaVA keys, and the dropped keys with reasons.

    Raises:
        ValueError: For keys outside LLaVA-v1's layout, or a LISA checkpoint (SAM keys).
    """
    mapped, dropped = map_keys(state)
    lisa_keys = sorted(k for k, ours in mapped.items() if not ours.startswith(LLAVA_PREFIX))
    if lisa_keys:
        raise ValueError(
            f'{src_dir} holds LISA weights (SAM / text_hidden_fcs, e.g. '
            f'{lisa_keys[:MAX_LISTED]}), not a plain LLaVA-v1 model: convert it with '
            'tools/model_converters/lisa_to_lisakit.py.'
        )
    if not any(ours.endswith('multi_modal_projector.linear.weight') for ours in mapped.values()):
        raise ValueError(
            f'{src_dir} has no model.mm_projector weights: expected a LLaVA-v1 model '
            '(LlavaLlamaForCausalLM), not a plain LLaMA.'
        )
    llava = {ours[len(LLAVA_PREFIX) :]: state[src] for src, ours in mapped.items()}
    return llava, dropped


def _v1_tokenizer(
    src_dir: str, src_cfg: dict, rows: int
) -> tuple[PreTrainedTokenizerBase, list[str]]:
    """The model's tokenizer with lisakit's tokens, and the tokens added to it.

    ``<im_start>`` / ``<im_end>`` must not be added onto rows LLaVA-v1 trained for them.

    LLaVA-v1 adds ``<im_patch>``, ``<im_start>``, ``<im_end>`` to LLaMA's tokenizer; an
    embedding with more rows than the tokenizer knows means the tokenizer files are not the
    ones saved with the model, and new ids would point at other tokens' rows.
    """
    use_im_start_end = bool(src_cfg.get('mm_use_im_start_end', DEFAULT_IM_START_END))
    tokenizer, added = lisakit_tokenizer(src_dir, use_im_start_end, seg_token=None)
    before = len(tokenizer) - len(added)
    new = [t for t in (IM_START_TOKEN, IM_END_TOKEN) if t in added]
    if new and rows > before:
        raise ValueError(
            f'{src_dir}: the embedding has {rows} rows but the tokenizer {before} tokens, without '
            f'{new}; copy the tokenizer files saved with this LLaVA-v1 model (they hold '
            '<im_patch>, <im_start>, <im_end>).'
        )
    return tokenizer, added


def convert_llava_v1_checkpoint(
    src_dir: str,
    clip_dir: str,
    out_dir: str,
    dtype: Optional[str] = None,
    max_shard_size: str = DEFAULT_SHARD_SIZE,
) -> ConversionReport:
    """Convert the LLaVA-v1 model in ``src_dir`` into a Hugging Face LLaVA folder ``out_dir``.

    Args:
        src_dir: Folder of an original LLaVA-v1 model: ``config.json`` (LLaMA fields and
            ``mm_*``), tokenizer files, ``model*.safetensors`` or ``pytorch_model*.bin``.
        clip_dir: Local Hugging Face CLIP folder of its tower (``openai/clip-vit-large-patch14``):
            its config always, its weights when the checkpoint lacks the tower.
        out_dir: Output folder, loadable with ``LlavaBackbone(pretrained=out_dir,
            projector_type='linear')`` (a linear-projector ``LlavaForConditionalGeneration``).
        dtype: Store the weights in this dtype (e.g. ``'bfloat16'``); default: as stored.
        max_shard_size: Shard size of the written safetensors.

    Returns:
        The :class:`ConversionReport` (also written to ``conversion_info.json``).

    Raises:
        FileNotFoundError: For a missing folder, config.json or weights.
        ValueError: For keys outside LLaVA-v1's layout or weights that do not fit.
    """
    src_cfg = _read_source_config(src_dir, clip_dir)
    state = read_state_dict(src_dir)
    llava_state, dropped = _llava_weights(state, src_dir)
    tokenizer, added = _v1_tokenizer(src_dir, src_cfg, llava_state[EMBED_KEYS[0]].shape[0])
    llava, tower = complete_llava(llava_state, tokenizer, src_cfg, src_dir, clip_dir)
    dtype_ = getattr(torch, dtype) if dtype else None
    write_llava(out_dir, llava, llava_state, tokenizer, dtype_, max_shard_size)
    report = ConversionReport(
        source=os.path.abspath(src_dir),
        num_source_keys=len(state),
        num_mapped=len(state) - len(dropped),
        dropped=dropped,
        vision_tower=tower,
        added_tokens=added,
        seg_token='',  # none: LISA's training adds '[SEG]'
        image_token_id=llava.image_token_id,
        vocab_size=len(tokenizer),
    )
    dump_json_atomic(dict(converted=asdict(report)), os.path.join(out_dir, LLAVA_INFO_FILE))
    return report
