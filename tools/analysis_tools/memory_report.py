"""Memory report of a config's model: bytes per component, trainable parameters, lean
checkpoint size and (on a real build) peak memory of a few training steps.

Real sizes without weights or a GPU: ``--random-llava llava-1.5-7b --meta`` builds the
config's model with a randomly initialised LLaVA of that size on the ``meta`` device (no
memory) and estimates the 4-bit storage analytically::

    python tools/analysis_tools/memory_report.py \
        configs/_base_/models/lisa_llava-1.5-7b-qlora_sam-vit-h.py \
        --random-llava llava-1.5-7b --meta

A tiny config builds for real, quantizes with bitsandbytes and runs ``--steps`` steps::

    python tools/analysis_tools/memory_report.py configs/lisa/lisa_tiny-qlora_shapes.py --steps 3
"""

import argparse
import copy
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.engine.hooks.training_history_hook import peak_memory_gb  # noqa: E402
from lisakit.registry import MODELS  # noqa: E402

MIB = 1024**2
#: bitsandbytes NF4 storage: 4 bits per weight plus the block absmax (block 64): fp32
#: without double quantization, 8-bit + an fp32 per 256 blocks with it.
NF4_BITS = {False: 4 + 32 / 64, True: 4 + 8 / 64 + 32 / (64 * 256)}
INT8_BITS = 8
#: Real sizes of LLaVA-1.5 (llava-hf), for ``--random-llava``.
CLIP_L_336 = dict(
    model_type='clip_vision_model',
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
)
LLAVA_PRESETS = {
    'llava-1.5-7b': dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32
    ),
    'llava-1.5-13b': dict(
        hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40
    ),
}
LLAMA_VOCAB = 32000
BF16_BYTES = 2
ADAM_STATE_BYTES = 8  # exp_avg + exp_avg_sq in fp32


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Memory report of a lisakit model')
    parser.add_argument('config')
    parser.add_argument(
        '--random-llava',
        choices=sorted(LLAVA_PRESETS),
        help='replace the backbone weights by a random LLaVA of this size',
    )
    parser.add_argument(
        '--meta',
        action='store_true',
        help='build on the meta device (sizes only, no memory, no steps)',
    )
    parser.add_argument('--steps', type=int, default=0, help='training steps to measure')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def model_config(cfg: Config, preset: str, meta: bool) -> tuple[dict, dict]:
    """The model config to build and the quantization to estimate (meta builds skip it)."""
    model = copy.deepcopy(cfg.model.to_dict())
    backbone = model['backbone']
    if preset:
        text = dict(model_type='llama', max_position_embeddings=4096, **LLAVA_PRESETS[preset])
        text['num_key_value_heads'] = text['num_attention_heads']
        backbone.update(
            pretrained=None,
            llava_config=dict(
                vision_config=CLIP_L_336,
                text_config=text,
                vision_feature_layer=-2,
                vision_feature_select_strategy='default',
            ),
        )
        words = [f'w{i}' for i in range(LLAMA_VOCAB)]  # a LLaMA-sized offline vocabulary
        backbone['tokenizer'] = dict(type='WordTokenizer', extra_words=words)
        for part in ('sam_encoder', 'head'):
            model[part]['checkpoint'] = None
    quantization = backbone.get('quantization') or {}
    if meta:
        backbone['quantization'] = None  # bitsandbytes needs real weights; estimated below
    return model, quantization


def tensor_bytes(t: torch.Tensor) -> int:
    """Storage of a tensor, including a bitsandbytes 4-bit quantization state."""
    size = t.numel() * t.element_size()
    state = getattr(t, 'quant_state', None)
    if state is not None:
        size += tensor_bytes(state.absmax)
        if getattr(state, 'nested', False):
            size += tensor_bytes(state.state2.absmax)
    return size


def estimated_bytes(name: str, p: torch.nn.Parameter, quantization: dict) -> float:
    """Storage of ``p`` once the LLM's decoder linears are quantized as configured."""
    in_llm_linear = '.language_model.layers.' in name and p.dim() == 2 and 'lora_' not in name
    if not quantization or not in_llm_linear or p.requires_grad:
        return tensor_bytes(p)
    if quantization.get('bits', 4) == INT8_BITS:
        return p.numel()
    return p.numel() * NF4_BITS[bool(quantization.get('double_quant', True))] / 8


def component_sizes(model: torch.nn.Module, quantization: dict, meta: bool) -> dict:
    """``{part: (params, trainable params, bytes)}``; bytes are estimated on ``meta``."""
    sizes = {}
    for part in ('backbone', 'sam_encoder', 'neck', 'head'):
        named = list(getattr(model, part).named_parameters(prefix=part))
        size = sum(
            estimated_bytes(n, p, quantization) if meta else tensor_bytes(p) for n, p in named
        )
        size += sum(tensor_bytes(b) for b in getattr(model, part).buffers())
        trainable = sum(p.numel() for _, p in named if p.requires_grad)
        sizes[part] = (sum(p.numel() for _, p in named), trainable, size)
    return sizes


def report(model: torch.nn.Module, quantization: dict, meta: bool) -> float:
    """Print the per-component table; return the lean checkpoint size in bytes."""
    print(f'{"component":<14}{"params":>14}{"trainable":>14}{"size (MiB)":>14}')
    for part, (params, trainable, size) in component_sizes(model, quantization, meta).items():
        print(f'{part:<14}{params:>14,}{trainable:>14,}{size / MIB:>14.1f}')
    lean = sum(tensor_bytes(p) for p in model.parameters() if p.requires_grad)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f'lean checkpoint, trainable weights: {lean / MIB:.1f} MiB as built '
        f'({n_train * BF16_BYTES / MIB:.1f} MiB in bf16); optimizer state (AdamW) adds '
        f'{n_train * ADAM_STATE_BYTES / MIB:.1f} MiB to a resumable checkpoint'
    )
    return lean


def measure_steps(cfg: Config, model: torch.nn.Module, steps: int) -> None:
    """Run ``steps`` training steps on the config's data; print time and peak memory."""
    from mmengine.dataset import pseudo_collate

    from lisakit.registry import DATASETS

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).train()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = [dataset[i] for i in range(cfg.train_dataloader.batch_size)]
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    tic = time.perf_counter()
    for _ in range(steps):
        data = model.data_preprocessor(pseudo_collate(batch), True)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if k.startswith('loss_'))
        optim.zero_grad()
        loss.backward()
        optim.step()
    step_s = (time.perf_counter() - tic) / steps
    peak, source = peak_memory_gb()
    print(f'{steps} steps, batch {len(batch)}: {step_s:.3f} s/step, peak {peak:.3f} GiB ({source})')


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    model_cfg, quantization = model_config(cfg, args.random_llava, args.meta)
    if args.meta:
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
    else:
        model = MODELS.build(model_cfg)
    kind = f'{quantization.get("bits")}-bit estimate' if args.meta and quantization else 'built'
    print(f'{args.config} ({args.random_llava or "config weights"}, {kind})')
    report(model, quantization, args.meta)
    if args.steps and not args.meta:
        measure_steps(cfg, model, args.steps)
    return 0


if __name__ == '__main__':
    sys.exit(main())
