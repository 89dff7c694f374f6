"""Quantization (bitsandbytes) and parameter-efficient adapters (peft) for the LLM.

Only the language model is quantized by default: the CLIP tower, the multimodal
projector and the LM head stay in full precision (``DEFAULT_SKIP_MODULES``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Optional, Sequence

import torch
from torch import nn
from transformers import BitsAndBytesConfig, PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_NAME

#: LoRA target modules of the LLaMA attention (q/k/v/o projections).
DEFAULT_LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj')
#: Module-name prefixes kept unquantized in a HF LLaVA (matched from the start of names).
DEFAULT_SKIP_MODULES = ('model.vision_tower', 'model.multi_modal_projector', 'lm_head')
#: Modules holding the ``<SEG>`` rows (input embeddings and LM head).
TOKEN_ROW_MODULES = ('embed_tokens', 'lm_head')
QUANT_BITS = (4, 8)


def build_bnb_config(quantization: dict) -> BitsAndBytesConfig:
    """A ``BitsAndBytesConfig`` from lisakit's quantization dict.

    Args:
        quantization: ``bits`` (4 or 8), and for 4 bits ``quant_type`` ('nf4' or 'fp4'),
            ``double_quant`` (bool), ``compute_dtype`` (dtype name); ``skip_modules``
            (module-name prefixes kept unquantized).
    """
    q = dict(quantization)
    bits = q.pop('bits', 4)
    skip = list(q.pop('skip_modules', DEFAULT_SKIP_MODULES))
    if bits not in QUANT_BITS:
        raise ValueError(f'model.backbone.quantization.bits={bits}; expected 4 or 8.')
    if bits == 8:
        if q:
            raise ValueError(f'Unknown 8-bit quantization keys {sorted(q)}.')
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    cfg = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.pop('quant_type', 'nf4'),
        bnb_4bit_use_double_quant=q.pop('double_quant', True),
        bnb_4bit_compute_dtype=getattr(torch, q.pop('compute_dtype', 'bfloat16')),
        llm_int8_skip_modules=skip,
    )
    if q:
        raise ValueError(
            f'Unknown model.backbone.quantization keys {sorted(q)}; expected '
            'bits, quant_type, double_quant, compute_dtype, skip_modules.'
        )
    return cfg


def quantize_random_model(
    model: PreTrainedModel, bnb_config: BitsAndBytesConfig, dtype: torch.dtype
) -> PreTrainedModel:
    """Quantize a randomly initialised model through the real loading path.

    transformers quantizes while loading, so the model is saved to a temporary folder
    and loaded back with ``quantization_config`` (meant for small test models). The
    weights are written with safetensors directly: ``save_pretrained`` writes on rank 0
    only once a process group exists, and every rank builds its own model.
    """
    from safetensors.torch import save_model

    with tempfile.TemporaryDirectory() as folder:
        model.config.save_pretrained(folder)
        save_model(model, os.path.join(folder, SAFE_WEIGHTS_NAME))
        return type(model).from_pretrained(folder, quantization_config=bnb_config, dtype=dtype)


def keep_4bit_weights_exact(model: nn.Module) -> int:
    """Stop bitsandbytes repacking 4-bit weights for fast CPU inference.

    On CPUs with AVX512-BF16, ``Linear4bit`` converts its weights to a CPU inference
    layout at the first no-grad forward in eval mode (validation) and converts them back
    when saved or moved to CUDA. The way back quantizes again, and with double
    quantization the block scales come out slightly different: the frozen base would
    change during training and a resumed run would not match an uninterrupted one.
    lisakit turns the conversion off (slower CPU 4-bit inference, exact frozen weights).

    Returns:
        The number of 4-bit layers changed.
    """
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def count_quantized(model: nn.Module) -> int:
    """Number of bitsandbytes 4-bit / 8-bit linear layers in ``model``."""
    import bitsandbytes as bnb

    return sum(isinstance(m, (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)) for m in model.modules())


def add_adapters(
    model: PreTrainedModel, lora: Optional[dict], seg_token_rows: Sequence[int]
) -> nn.Module:
    """Wrap ``model`` with peft: LoRA on the language model and/or trainable token rows.

    Args:
        model: The (frozen) Hugging Face model.
        lora: ``None`` or a dict with ``r``, ``alpha``, ``dropout``, ``target_modules``,
            ``bias`` (other keys go to ``peft.LoraConfig``).
        seg_token_rows: Token ids whose embedding and LM-head rows train (may be empty).

    Returns:
        A peft model, or ``model`` itself when there is nothing to add.
    """
    from peft import LoraConfig, TrainableTokensConfig, get_peft_model

    rows = list(seg_token_rows)
    if lora is None:
        if not rows:
            return model
        return get_peft_model(
            model, TrainableTokensConfig(target_modules=list(TOKEN_ROW_MODULES), token_indices=rows)
        )
    lora = dict(lora)
    names = '|'.join(lora.pop('target_modules', DEFAULT_LORA_TARGETS))
    return get_peft_model(
        model,
        LoraConfig(
            r=lora.pop('r', 8),
            lora_alpha=lora.pop('alpha', 16),
            lora_dropout=lora.pop('dropout', 0.05),
            bias=lora.pop('bias', 'none'),
            target_modules=rf'.*language_model.*\.({names})$',
            trainable_token_indices={m: rows for m in TOKEN_ROW_MODULES} if rows else None,
            **lora,
        ),
    )


def prepare_for_training(
    model: PreTrainedModel,
    quantized: bool,
    prepare_kbit: bool,
    gradient_checkpointing: bool,
    lora: Optional[dict],
    seg_token_rows: Sequence[int],
) -> tuple[nn.Module, int]:
    """Freeze a built Hugging Face model and ready it for LISA training.

    Keeps 4-bit weights exact (quantized models), freezes every weight, runs peft's
    ``prepare_model_for_kbit_training`` (quantized + ``prepare_kbit``) or enables
    gradient checkpointing, then adds the adapters (:func:`add_adapters`).

    Args:
        model: The built (possibly bitsandbytes-quantized) model.
        quantized: Whether ``model`` was built with a bitsandbytes config.
        prepare_kbit: Run peft's k-bit preparation on a quantized model.
        gradient_checkpointing: Recompute activations in the backward pass.
        lora: ``None`` or the LoRA arguments of :func:`add_adapters`.
        seg_token_rows: Token ids whose embedding and LM-head rows train.

    Returns:
        The model (peft-wrapped when adapters were added) and its number of quantized
        linear layers.
    """
    num_quantized = count_quantized(model) if quantized else 0
    if quantized:
        keep_4bit_weights_exact(model)
    model.requires_grad_(False)
    if quantized and prepare_kbit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable({'use_reentrant': False})
        model.enable_input_require_grads()
    return add_adapters(model, lora, seg_token_rows), num_quantized
