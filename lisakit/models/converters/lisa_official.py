"""Convert a released LISA checkpoint (dvlab-research/LISA, e.g. ``xinlai/LISA-7B-v1``).

Key mapping: see :mod:`lisakit.models.converters.lisa_layout`.

Output folder (see :func:`convert_lisa_checkpoint`)::

    llava/                   Hugging Face LLaVA with a linear projector (LLaMA + CLIP) and
                             LISA's tokenizer plus lisakit's <image> placeholder
    sam.pth                  SAM in SAM's key layout (LISA's copy: trained mask decoder)
    lisakit_checkpoint.pth   lean lisakit checkpoint: neck and the other trainable weights
    lisakit_config.py        the config; ``lisakit.apis.init_model(OUT)`` loads it all
    export_info.json         the report: keys mapped / dropped (with reasons), token ids
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Union

import torch
from huggingface_hub import save_torch_state_dict
from mmengine.config import Config
from transformers import CLIPVisionConfig, LlavaConfig, PreTrainedTokenizerBase

from lisakit.registry import MODELS
from lisakit.tokenizers import HFTokenizer, add_im_start_end_tokens, add_lisa_tokens
from lisakit.utils.checkpoint_format import lean_checkpoint
from lisakit.utils.cli import progress_bar
from lisakit.utils.constants import IMAGE_TOKEN
from lisakit.utils.io import atomic_write, dump_json_atomic

from ..backbones.hf_loading import resolve_pretrained
from ..backbones.projectors import LINEAR_PROJECTOR, PROJECTOR_CONFIG_KEY, llava_class
from ..backbones.trainable import drop_deprecated_keys
from .checkpoint_io import read_state_dict
from .lisa_layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    INFO_FILE,
    LISA_SEG_TOKEN,
    LLAVA_DIR,
    LLAVA_PREFIX,
    MAX_LISTED,
    SAM_FILE,
    SAM_PARTS,
    SAM_PREFIXES,
    ConversionReport,
    check_state,
    map_keys,
)

LISA_PARTS = ('sam_encoder', 'neck', 'head')
#: ``model.backbone.processor`` keys a conversion drops: the converted ``llava/`` folder
#: gives them (its tokenizer, LISA's ``[SEG]``, its CLIP size and image features).
CONVERTED_PROCESSOR_FACTS = (
    'tokenizer',
    'seg_token',
    'use_im_start_end',
    'image_processor',
    'image_size',
    'num_image_features',
)
#: Progress steps of a conversion: read, map + tokenizer, LLaVA check, parts; LLaVA
#: weights, tokenizer + SAM, lisakit checkpoint + config.
CONVERSION_STEPS = 7

#: Prefix of the tower's keys in CLIPModel (and transformers 4 CLIPVisionModel) files.
CLIP_PREFIX = 'vision_model.'
CLIP_TARGET = 'model.vision_tower.'
EMBED_KEYS = ('model.language_model.embed_tokens.weight', 'lm_head.weight')
#: LLaMA fields of LISA's ``config.json`` carried into the text config.
LLAMA_CONFIG_KEYS = (
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'hidden_act',
    'max_position_embeddings',
    'rms_norm_eps',
    'rope_theta',
    'rope_scaling',
    'initializer_range',
    'bos_token_id',
    'eos_token_id',
    'pad_token_id',
    'tie_word_embeddings',
)
#: ``openai/clip-vit-large-patch14``, LISA's tower, for checkpoints that include it.
CLIP_VIT_L14_224 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=224,
    patch_size=14,
    projection_dim=768,
    hidden_act='quick_gelu',
)
DEFAULT_VISION_LAYER = -2
#: Shard size of the written LLaVA safetensors (``save_torch_state_dict``'s ``max_shard_size``).
DEFAULT_SHARD_SIZE = '5GB'
#: A Hugging Face model folder's config file.
HF_CONFIG_FILE = 'config.json'


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} does not exist; a LISA checkpoint folder has one.')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def lisakit_tokenizer(
    src_dir: str, use_im_start_end: bool, seg_token: Optional[str] = LISA_SEG_TOKEN
) -> tuple[PreTrainedTokenizerBase, list[str]]:
    """The tokenizer of ``src_dir`` with lisakit's additions; returns it and the added tokens.

    Args:
        src_dir: Folder with the tokenizer files (LISA's or LLaVA-v1's).
        use_im_start_end: Add ``<im_start>`` / ``<im_end>`` when missing.
        seg_token: The segmentation token the tokenizer must hold (LISA's ``[SEG]``);
            ``None`` for a LLaVA-v1 base, whose tokenizer has none.

    Raises:
        ImportError: If reading a ``tokenizer.model`` needs sentencepiece / protobuf.
        ValueError: If the tokenizer has no ``seg_token``.
    """
    try:
        tokenizer = HFTokenizer(src_dir)
    except ImportError as err:
        raise ImportError(
            f'{src_dir} holds a sentencepiece tokenizer (tokenizer.model), which transformers '
            f'reads with the sentencepiece and protobuf packages: pip install sentencepiece '
            f'protobuf. ({err})'
        ) from err
    if seg_token is not None and seg_token not in tokenizer.get_vocab():
        raise ValueError(
            f'The tokenizer in {src_dir} has no {seg_token!r} token; expected the '
            'tokenizer files saved with a released LISA model.'
        )
    before = len(tokenizer)
    add_lisa_tokens(tokenizer, seg_token, IMAGE_TOKEN)
    if use_im_start_end:
        add_im_start_end_tokens(tokenizer)
    return tokenizer, tokenizer.convert_ids_to_tokens(list(range(before, len(tokenizer))))


def _vision_tower(
    llava_state: dict, vision_tower: Optional[str], src_cfg: dict
) -> tuple[CLIPVisionConfig, str]:
    """The CLIP config, adding the tower's weights from a CLIP folder when the checkpoint
    lacks them (LISA's merge script strips them)."""
    has_tower = any(k.startswith(CLIP_TARGET) for k in llava_state)
    name = vision_tower or src_cfg.get('mm_vision_tower') or src_cfg.get('vision_tower')
    try:
        folder = resolve_pretrained(name, what='--vision-tower') if name else None
    except FileNotFoundError as err:
        if has_tower and vision_tower is None:
            folder = None
        else:
            raise FileNotFoundError(
                f'{err} LISA checkpoints do not contain the CLIP tower: pass --vision-tower '
                '(vision_tower=) a local copy of openai/clip-vit-large-patch14.'
            ) from None
    if folder is None:
        return CLIPVisionConfig(**CLIP_VIT_L14_224), 'checkpoint (CLIP ViT-L/14-224 config)'
    config = CLIPVisionConfig.from_pretrained(folder, local_files_only=True)
    if has_tower:
        return config, f'checkpoint (config from {folder})'
    llava_state.update(_clip_weights(folder))
    return config, folder


def _clip_weights(folder: str) -> dict:
    """The vision tower of a CLIP folder under LLaVA's keys (``CLIPModel`` files, or
    ``CLIPVisionModel`` files with or without the ``vision_model.`` prefix)."""
    clip = read_state_dict(folder)
    if any(k.startswith(CLIP_PREFIX) for k in clip):
        clip = {k[len(CLIP_PREFIX) :]: v for k, v in clip.items() if k.startswith(CLIP_PREFIX)}
    return {CLIP_TARGET + k: v for k, v in clip.items() if not k.endswith('position_ids')}


def _pad_token_rows(llava_state: dict, rows: int) -> None:
    """Give tokens added by lisakit (``<image>``) embedding / LM-head rows: the mean row.
    The ``<image>`` row is never read (image features replace it) nor generated."""
    for key in EMBED_KEYS:
        weight = llava_state[key]  # (V, D)
        if weight.shape[0] < rows:
            extra = weight.float().mean(0, keepdim=True).to(weight.dtype)  # (1, D)
            llava_state[key] = torch.cat([weight, extra.expand(rows - weight.shape[0], -1)])


def _llava_config(src_cfg: dict, vision: CLIPVisionConfig, rows: int, image_id: int) -> LlavaConfig:
    text = {k: src_cfg[k] for k in LLAMA_CONFIG_KEYS if src_cfg.get(k) is not None}
    text.update(model_type='llama', vocab_size=rows)
    config = LlavaConfig(
        text_config=text,
        vision_config=vision.to_dict(),
        image_token_id=image_id,
        vision_feature_layer=src_cfg.get('mm_vision_select_layer', DEFAULT_VISION_LAYER),
        vision_feature_select_strategy='default',  # LISA: 'patch' (CLS dropped)
        multimodal_projector_bias=True,
        **{PROJECTOR_CONFIG_KEY: LINEAR_PROJECTOR},
    )
    config.architectures = [llava_class(LINEAR_PROJECTOR).__name__]
    return config


def _check_llava(config: LlavaConfig, llava_state: dict, src_dir: str) -> None:
    with torch.device('meta'):
        model = llava_class(LINEAR_PROJECTOR)(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state(
        llava_state,
        expected,
        f'{src_dir}: the LLaMA / projector / CLIP weights do not fit config.json',
        'Check that config.json and --vision-tower belong to this checkpoint.',
    )


def complete_llava(
    llava_state: dict,
    tokenizer: PreTrainedTokenizerBase,
    src_cfg: dict,
    src_dir: str,
    vision_tower: Optional[str],
) -> tuple[LlavaConfig, str]:
    """Complete the LLaVA-v1 weights (Hugging Face keys, in place) into a linear-projector
    Hugging Face LLaVA and return its config and where the CLIP tower came from.

    The tower's weights come from ``vision_tower`` (or the ``mm_vision_tower`` of
    ``src_cfg``) when the checkpoint lacks them; the tokens lisakit added to ``tokenizer``
    get embedding / LM-head rows; every weight is checked against the config.

    Raises:
        FileNotFoundError: If the CLIP folder is needed and missing.
        ValueError: If the weights do not fit ``config.json`` and the CLIP folder.
    """
    vision, tower_source = _vision_tower(llava_state, vision_tower, src_cfg)
    rows = max(len(tokenizer), llava_state[EMBED_KEYS[0]].shape[0])
    _pad_token_rows(llava_state, rows)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    llava = _llava_config(src_cfg, vision, rows, image_id)
    _check_llava(llava, llava_state, src_dir)
    return llava, tower_source


def write_llava(
    llava_dir: str,
    config: LlavaConfig,
    llava_state: dict,
    tokenizer: PreTrainedTokenizerBase,
    dtype: Optional[torch.dtype] = None,
    max_shard_size: str = DEFAULT_SHARD_SIZE,
) -> None:
    """Write a complete Hugging Face LLaVA folder: config, safetensors shards, tokenizer."""
    os.makedirs(llava_dir, exist_ok=True)
    config.save_pretrained(llava_dir)
    save_torch_state_dict(_cast(llava_state, dtype), llava_dir, max_shard_size=max_shard_size)
    tokenizer.save_pretrained(llava_dir)


def converted_config(
    config: Union[str, Config], out_dir: str, src_cfg: dict, llava: LlavaConfig
) -> Config:
    """``config`` pointed at the converted files, with a frozen (inference) backbone.

    The backbone loads ``llava/`` (weights and tokenizer: its processor's tokenizer
    defaults to it, its CLIP size and image features come from its config); SAM loads
    ``sam.pth``. The data pipeline is backbone-neutral: nothing there changes.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    out_dir = os.path.abspath(out_dir)
    sam = os.path.join(out_dir, SAM_FILE)
    backbone = cfg.model.backbone
    backbone.update(
        pretrained=os.path.join(out_dir, LLAVA_DIR),
        llava_config=None,
        seg_token=LISA_SEG_TOKEN,
        projector_type=LINEAR_PROJECTOR,
        use_im_start_end=bool(src_cfg.get('mm_use_im_start_end', True)),
        vision_feature_layer=llava.vision_feature_layer,
        vision_feature_select_strategy=llava.vision_feature_select_strategy,
        lora=None,
        quantization=None,
        trainable=dict(
            vision_tower=False, projector=False, language_model='frozen', embeddings='none'
        ),
        gradient_checkpointing=False,
    )
    # the converted tokenizer and CLIP facts are llava/'s: drop any the config named
    drop_deprecated_keys(backbone)  # (deprecated keys would override them)
    for key in CONVERTED_PROCESSOR_FACTS:
        (backbone.get('processor') or {}).pop(key, None)
    cfg.model.sam_encoder.checkpoint = sam  # the SAM head's weights too
    cfg.model.head.pop('checkpoint', None)
    # yapf formatting of the dumped text takes seconds; the plain text is valid Python too
    return Config(cfg.to_dict(), format_python_code=False)


def _lisa_parts(cfg: Config, hidden_size: int) -> dict:
    """SAM encoder, neck and head of ``cfg`` built on the meta device (no weights)."""
    parts = {}
    with torch.device('meta'):
        for name in LISA_PARTS:
            part = dict(cfg.model[name])
            if name == 'neck':
                part.setdefault('in_channels', hidden_size)
            else:
                part['checkpoint'] = None
            parts[name] = MODELS.build(part)
    return parts


def split_lisa_parts(rest: dict, cfg: Config, hidden_size: int) -> tuple[dict, dict]:
    """Check the SAM / neck weights against ``cfg`` and split them into a SAM-layout state
    (``sam.pth``) and the lean lisakit state (the parts' trainable weights).

    Raises:
        ValueError: If the weights do not fit the config's SAM / neck sizes.
    """
    parts = _lisa_parts(cfg, hidden_size)
    expected = {f'{n}.{k}': v.shape for n, p in parts.items() for k, v in p.state_dict().items()}
    check_state(
        rest,
        expected,
        'The SAM / text_hidden_fcs weights do not fit the config',
        'Use a config whose SAM (vit_h for every released LISA) and neck match the checkpoint.',
    )
    trainable = {
        f'{n}.{k}' for n, p in parts.items() for k, q in p.named_parameters() if q.requires_grad
    }
    sam = {}
    for ours, theirs in SAM_PARTS:
        sam.update({theirs + k[len(ours) :]: v for k, v in rest.items() if k.startswith(ours)})
    uncovered = sorted(set(rest) - trainable - {k for k in rest if k.startswith(SAM_PREFIXES)})
    if uncovered:
        raise ValueError(
            f'Frozen non-SAM weights {uncovered[:MAX_LISTED]} could not be stored; make them '
            'trainable in the config (the neck is trainable by default).'
        )
    return sam, {k: rest[k] for k in sorted(trainable)}


def _cast(state: dict, dtype: Optional[torch.dtype]) -> dict:
    if dtype is None:
        return state
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _lean_checkpoint(state: dict, report: ConversionReport) -> dict:
    tokens = dict(
        seg_token_id=report.seg_token_id,
        image_token_id=report.image_token_id,
        vocab_size=report.vocab_size,
    )
    return lean_checkpoint(state, tokens, converted_from=report.source)


def convert_lisa_checkpoint(
    src_dir: str,
    out_dir: str,
    config: Union[str, Config],
    vision_tower: Optional[str] = None,
    dtype: Optional[str] = None,
    max_shard_size: str = DEFAULT_SHARD_SIZE,
    progress: bool = True,
) -> ConversionReport:
    """Convert the LISA checkpoint in ``src_dir`` into a lisakit model folder ``out_dir``.

    Args:
        src_dir: Folder of a released (merged) LISA model: ``config.json``, tokenizer
            files, and ``model*.safetensors`` or ``pytorch_model*.bin`` (index if sharded).
        out_dir: Output folder (see the module docstring); load it with
            ``lisakit.apis.init_model(out_dir)``.
        config: lisakit config giving the SAM / neck / head sizes, the processor settings and
            the data pipeline (e.g. ``configs/lisa/lisa_llava-v1-7b_sam-vit-h_eval_reasonseg.py``).
        vision_tower: Local CLIP folder (``openai/clip-vit-large-patch14``) when the
            checkpoint has no tower; default: the ``vision_tower`` of ``config.json`` if
            it is a local folder or cached hub id.
        dtype: Store the weights in this dtype (e.g. ``'bfloat16'``); default: as stored.
        max_shard_size: Shard size of the written LLaVA safetensors.
        progress: Show a progress bar (on stderr) over the conversion's steps.

    Returns:
        The :class:`ConversionReport` (also written to ``export_info.json``).
    """
    with progress_bar(CONVERSION_STEPS, enabled=progress) as bar:
        tick = bar.update if bar is not None else (lambda: None)
        converted = _convert(src_dir, out_dir, config, vision_tower, tick)
        _write(converted, out_dir, getattr(torch, dtype) if dtype else None, max_shard_size, tick)
    return converted.report


@dataclass
class _Converted:
    """Everything a conversion writes."""

    llava_state: dict  # Hugging Face LLaVA keys -> tensors
    llava: LlavaConfig
    tokenizer: PreTrainedTokenizerBase
    sam: dict  # SAM checkpoint keys -> tensors
    lean: dict  # lisakit keys -> tensors (the parts' trainable weights)
    cfg: Config
    report: ConversionReport


def _convert(
    src_dir: str,
    out_dir: str,
    config: Union[str, Config],
    vision_tower: Optional[str],
    tick: Callable[[], None],
) -> _Converted:
    """Read, map, complete and check the weights (nothing is written); ``tick`` after
    each of four steps."""
    state = read_state_dict(src_dir)
    tick()
    mapped, dropped = map_keys(state)
    src_cfg = _read_json(os.path.join(src_dir, HF_CONFIG_FILE))
    tokenizer, added = lisakit_tokenizer(src_dir, bool(src_cfg.get('mm_use_im_start_end', True)))
    tick()
    target = {dst: state[src] for src, dst in mapped.items()}
    llava_state = {
        k[len(LLAVA_PREFIX) :]: v for k, v in target.items() if k.startswith(LLAVA_PREFIX)
    }
    rest = {k: v for k, v in target.items() if not k.startswith(LLAVA_PREFIX)}
    llava, tower_source = complete_llava(llava_state, tokenizer, src_cfg, src_dir, vision_tower)
    image_id = llava.image_token_id
    tick()
    cfg = converted_config(config, out_dir, src_cfg, llava)
    sam, lean = split_lisa_parts(rest, cfg, llava.text_config.hidden_size)
    tick()
    report = ConversionReport(
        source=os.path.abspath(src_dir),
        num_source_keys=len(state),
        num_mapped=len(mapped),
        dropped=dropped,
        vision_tower=tower_source,
        added_tokens=added,
        seg_token_id=tokenizer.convert_tokens_to_ids(LISA_SEG_TOKEN),
        image_token_id=image_id,
        vocab_size=len(tokenizer),
    )
    return _Converted(llava_state, llava, tokenizer, sam, lean, cfg, report)


def _write(
    converted: _Converted,
    out_dir: str,
    dtype: Optional[torch.dtype],
    max_shard_size: str,
    tick: Callable[[], None],
) -> None:
    """Write the converted folder (see the module docstring); ``tick`` after each of
    three steps."""
    llava_dir = os.path.join(out_dir, LLAVA_DIR)
    write_llava(
        llava_dir,
        converted.llava,
        converted.llava_state,
        converted.tokenizer,
        dtype,
        max_shard_size,
    )
    tick()
    # atomic: a failed (re)conversion never leaves a truncated checkpoint behind
    sam = _cast(converted.sam, dtype)
    atomic_write(os.path.join(out_dir, SAM_FILE), lambda tmp: torch.save(sam, tmp))
    tick()
    ckpt = _lean_checkpoint(_cast(converted.lean, dtype), converted.report)
    atomic_write(os.path.join(out_dir, CHECKPOINT_FILE), lambda tmp: torch.save(ckpt, tmp))
    atomic_write(os.path.join(out_dir, CONFIG_FILE), converted.cfg.dump)
    dump_json_atomic(dict(converted=asdict(converted.report)), os.path.join(out_dir, INFO_FILE))
    tick()
