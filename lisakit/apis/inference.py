"""Build a model from a config and segment one image with a question."""

from __future__ import annotations

import copy
import os
from typing import Optional, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import set_random_seed
from torch import nn

from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.checkpoint import load_from_lisakit_safe
from lisakit.utils.checkpoint_format import check_lean_keys

from .legacy_config import migrate_removed_steps

#: ``precision`` values -> torch dtype names (LISA's chat.py ``--precision`` choices).
PRECISIONS = {'fp32': 'float32', 'bf16': 'bfloat16', 'fp16': 'float16'}
#: What the scripts print for a rejection (the model found no matching object).
NO_MATCH_TEXT = 'no matching object'
#: Checkpoint written by ``tools/model_converters/lisa_to_lisakit.py`` in its output folder.
CONVERTED_CHECKPOINT = 'lisakit_checkpoint.pth'


def inference_config(
    cfg: Config,
    precision: Optional[str] = None,
    load_in_4bit: bool = False,
    load_in_8bit: bool = False,
) -> Config:
    """A copy of ``cfg`` set up for inference at a precision (the input is not changed).

    Args:
        cfg: A lisakit config.
        precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` for the backbone and the SAM
            encoder (neck and head are cast after loading); ``None`` keeps the config's.
        load_in_4bit: Quantize the language model to NF4 while loading (bitsandbytes),
            with ``precision`` as the compute dtype (LISA's ``--load_in_4bit``).
        load_in_8bit: Quantize the language model to LLM.int8 (``--load_in_8bit``).

    Raises:
        ValueError: For an unknown precision or both quantization flags.
    """
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f'precision={precision!r}; expected one of {sorted(PRECISIONS)}.')
    if load_in_4bit and load_in_8bit:
        raise ValueError('Set load_in_4bit or load_in_8bit, not both.')
    if precision is None and not (load_in_4bit or load_in_8bit):
        return cfg
    cfg = copy.deepcopy(cfg)
    backbone = cfg.model.backbone
    if precision is not None:
        backbone.torch_dtype = cfg.model.sam_encoder.torch_dtype = PRECISIONS[precision]
    if load_in_4bit or load_in_8bit:
        dtype = backbone.get('torch_dtype', 'float32')
        quant = dict(bits=4, compute_dtype=dtype) if load_in_4bit else dict(bits=8)
        backbone.pop('freeze_language_model', None)  # legacy flag: superseded below
        trainable = dict(backbone.get('trainable') or {})  # inference: nothing trains
        trainable['language_model'] = 'lora' if backbone.get('lora') is not None else 'frozen'
        backbone.update(
            quantization=quant,
            trainable=trainable,
            prepare_kbit=False,  # no fp32 up-casting / checkpointing for training
            gradient_checkpointing=False,
        )
    return cfg


def _cast_parts(model: nn.Module, precision: Optional[str]) -> None:
    """Cast the neck and the mask decoder to ``precision`` (as LISA casts its model). The
    prompt encoder stays float32: SAM's positional encoding does not run in bf16 / fp16,
    and the head casts its outputs to the decoder's dtype."""
    if precision is not None:
        dtype = getattr(torch, PRECISIONS[precision])
        model.neck.to(dtype)
        getattr(model.head, 'mask_decoder', model.head).to(dtype)


def init_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    device: str = 'cpu',
    precision: Optional[str] = None,
    load_in_4bit: bool = False,
    load_in_8bit: bool = False,
) -> nn.Module:
    """Build the model of ``config`` and load ``checkpoint`` (local path) into it.

    Args:
        config: Config file path, a loaded config, or a folder written by
            ``tools/model_converters/export.py`` or ``lisa_to_lisakit.py``.
        checkpoint: Optional checkpoint path (``tools/train.py`` output).
        device: Device to put the model on.
        precision: ``'fp32'`` / ``'bf16'`` / ``'fp16'``, or ``None`` for the config's.
        load_in_4bit: Load the language model in 4-bit NF4 (bitsandbytes).
        load_in_8bit: Load the language model in 8-bit (bitsandbytes).

    Returns:
        The model in eval mode, with the (inference) config attached as ``model.cfg``.
    """
    precision_kwargs = dict(
        precision=precision, load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit
    )
    if isinstance(config, str) and os.path.isdir(config):
        return init_model_from_export(config, device, **precision_kwargs)
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    cfg = inference_config(cfg, **precision_kwargs)
    model = _build(cfg)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    _cast_parts(model, precision)
    model.cfg = cfg
    return model.to(device).eval()


def load_weights(model: nn.Module, checkpoint: str) -> None:
    """Load a full or lean lisakit checkpoint; every expected key must be present.

    Raises:
        ValueError: Naming missing keys (full checkpoint) or mismatching trainable keys
            (lean checkpoint).
    """
    ckpt = load_from_lisakit_safe(checkpoint, map_location='cpu')
    _check_not_into_quantized(model, ckpt.get('state_dict', ckpt), checkpoint)
    lean = check_lean_keys(model, ckpt)
    result = model.load_state_dict(ckpt.get('state_dict', ckpt), strict=False)
    if result.missing_keys and not lean:
        raise ValueError(
            f'{checkpoint} lacks {len(result.missing_keys)} keys of this model, '
            f'e.g. {result.missing_keys[:5]}.'
        )


def _check_not_into_quantized(model: nn.Module, state: dict, checkpoint: str) -> None:
    """Refuse a checkpoint that holds weights of layers this model quantized while loading
    (a language model trained in full, e.g. the tiny demo's): bitsandbytes layers cannot
    take full-precision weights after quantization.

    Raises:
        ValueError: Naming the checkpoint, an example key and the fix.
    """
    import bitsandbytes as bnb

    quantized = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    names = [n for n, m in model.named_modules() if isinstance(m, quantized)]
    clashes = [f'{n}.weight' for n in names if f'{n}.weight' in state]
    if clashes:
        raise ValueError(
            f'{checkpoint} holds full-precision weights of {len(clashes)} layers that '
            f'--load-in-4bit / --load-in-8bit quantized while loading (e.g. {clashes[0]}): '
            'its language model was trained in full. Load it without quantization '
            '(e.g. --precision bf16), or quantize only models whose language model was '
            'frozen or trained with LoRA.'
        )


def _build(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` after seeding as the Runner does, so that frozen random
    weights (tiny configs, lean checkpoints) are the ones the model trained with."""
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is not None:
        set_random_seed(**randomness)
    return MODELS.build(cfg.model)


def init_model_from_export(export_dir: str, device: str = 'cpu', **precision_kwargs) -> nn.Module:
    """Rebuild a model from a folder written by ``tools/model_converters/export.py`` or
    by ``tools/model_converters/lisa_to_lisakit.py``.

    Args:
        export_dir: The folder (holds ``lisakit_config.py``; one written before the
            processor seam has its removed pipeline steps migrated, with a warning).
        device: Device to put the model on.
        **precision_kwargs: ``precision`` / ``load_in_4bit`` / ``load_in_8bit`` as in
            :func:`init_model`.
    """
    from .export import CONFIG_FILE, load_export

    config_file = os.path.join(export_dir, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f'{config_file} does not exist: a model folder must be written by '
            'tools/model_converters/export.py or lisa_to_lisakit.py; otherwise pass a '
            'config file and a checkpoint.'
        )
    cfg = Config.fromfile(config_file)
    migrate_removed_steps(cfg, config_file)  # a folder written before the processor seam
    cfg = inference_config(cfg, **precision_kwargs)
    model = _build(cfg)
    converted = os.path.join(export_dir, CONVERTED_CHECKPOINT)
    if os.path.isfile(converted):
        load_weights(model, converted)
    else:
        load_export(model, export_dir)
    _cast_parts(model, precision_kwargs.get('precision'))
    model.cfg = cfg
    return model.to(device).eval()


#: Pipeline steps that read annotations; inference has none (left in, they would give the
#: sample zero target masks).
ANNOTATION_STEPS = ('LoadReasonSegAnnotation', 'LoadMaskAnnotations')


def inference_model(
    model: nn.Module,
    image: Union[str, np.ndarray],
    question: str,
    answer: Optional[str] = None,
    max_new_tokens: Optional[int] = None,
) -> ReasonSegDataSample:
    """Segment ``image`` for ``question``.

    Args:
        model: A model from :func:`init_model`.
        image: Image path or an RGB uint8 (H, W, 3) array.
        question: The query; ``<image>\\n`` is prepended when missing.
        answer: ``None`` to let the model write its answer (greedy decoding, one mask per
            generated ``<SEG>``), or a given answer with one ``<SEG>`` per wanted mask
            (teacher-forced, e.g. LISA's ``'<SEG>.'``).
        max_new_tokens: Most tokens the model may write (it stops earlier at EOS);
            ``None``: the model's ``generation_cfg`` (512 by default, as LISA's chat).

    Returns:
        A data sample with ``pred_text`` (the generated answer, or the given one),
        ``pred_masks`` (n, H, W) bool at the image's size (one per ``<SEG>``),
        ``pred_iou_scores`` (n,) (SAM's predicted IoU of each mask) and ``pred_rejected``
        (the model found no matching object: its rejection token ``[REJ]`` / text, see
        ``lisakit/models/segmentors/rejection.py``; for a model without one, no mask).
        A rejection has no mask: ``pred_masks`` (0, H, W).
    """
    if max_new_tokens is not None and (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 1
    ):
        raise ValueError(f'max_new_tokens={max_new_tokens!r}; expected a positive integer.')
    if '<image>' not in question:
        question = '<image>\n' + question
    steps = [
        t for t in model.cfg.test_dataloader.dataset.pipeline if t['type'] not in ANNOTATION_STEPS
    ]
    results = dict(question=question, answer=answer or '', sample_idx=0)
    if isinstance(image, str):
        results['img_path'] = image
    else:
        results.update(img=np.ascontiguousarray(image), img_path=None)
    data = model.data_preprocessor(pseudo_collate([Compose(steps)(results)]), False)
    with torch.no_grad():
        if answer is None:
            overrides = None if max_new_tokens is None else dict(max_new_tokens=max_new_tokens)
            sample = model.predict_generate(data['inputs'], data['data_samples'], overrides)[0]
        else:
            sample = model(**data, mode='predict')[0]
            sample.pred_text = answer
    sample.pred_rejected = bool(sample.get('pred_rejected', len(sample.pred_masks) == 0))
    return sample


#: The name used by issue 5 and mmseg-style demos.
inference = inference_model
