"""Memory report of a config's model: bytes per component, trainable parameters, lean
checkpoint size and (on a real build) peak memory of a few training steps.

Real sizes without weights or a GPU: ``--random-llava llava-1.5-7b --meta`` builds the
config's model with a randomly initialised LLaVA of that size on the ``meta`` device (no
memory) and estimates the 4-bit storage analytically::

    python tools/analysis_tools/memory_report.py \
        configs/_base_/models/lisa_llava-1.5-7b-qlora_sam-vit-h.py \
        --random-llava llava-1.5-7b --meta

``--random-qwen qwen2.5-vl-7b --meta`` does the same with a random Qwen2.5-VL-7B (and random
SAM / SAM 2.1-L mask parts of real size)::

    python tools/analysis_tools/memory_report.py \
        configs/_base_/models/lisa_qwen2.5-vl-7b-qlora_sam-vit-h.py \
        --random-qwen qwen2.5-vl-7b --meta

A tiny config builds for real, quantizes with bitsandbytes and runs ``--steps`` steps::

    python tools/analysis_tools/memory_report.py configs/lisa/lisa_tiny-qlora_shapes.py --steps 3

Real sizes for real (a GPU for 7B/13B): without ``--meta``, ``--random-llava`` writes a random
LLaVA of that size to a local folder (``--random-dir``; built on the GPU when there is one),
loads it through the config's normal path (``pretrained=`` + 4-bit quantization while
loading), and runs ``--steps`` training steps and ``--infer`` inference samples on generated
ReasonSeg-format data whose queries fill the text to the processor's length limit::

    python tools/analysis_tools/memory_report.py \
        configs/lisa/lisa_llava-1.5-7b-qlora_sam-vit-h_8xb2-accum10_reasonseg.py \
        --random-llava llava-1.5-7b --random-dir /tmp/llava7b --steps 5 --infer 3 --amp
"""

import argparse
import contextlib
import copy
import json
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from lisakit.engine.hooks.training_history_hook import peak_memory_gb  # noqa: E402
from lisakit.models.backbones.trainable import drop_deprecated_keys  # noqa: E402
from lisakit.registry import MODELS  # noqa: E402
from lisakit.utils.cli import run_cli  # noqa: E402

MIB = 1024**2
#: bitsandbytes NF4 storage: 4 bits per weight plus the block absmax (block 64): fp32
#: without double quantization, 8-bit + an fp32 per 256 blocks with it.
NF4_BITS = {False: 4 + 32 / 64, True: 4 + 8 / 64 + 32 / (64 * 256)}
INT8_BITS = 8
#: Real sizes of LLaVA-1.5 (llava-hf), for ``--random-llava``; ``llava-tiny`` is a CPU smoke
#: test of the same path.
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
CLIP_TINY = dict(
    model_type='clip_vision_model',
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=56,
    patch_size=14,
    projection_dim=64,
)
LLAVA_PRESETS = {
    'llava-1.5-7b': (
        CLIP_L_336,
        dict(
            hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32
        ),
    ),
    'llava-1.5-13b': (
        CLIP_L_336,
        dict(
            hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40
        ),
    ),
    'llava-tiny': (
        CLIP_TINY,
        dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4),
    ),
}
LLAMA_VOCAB = 32000
#: Qwen2.5-VL-7B-Instruct's config.json (public), for ``--random-qwen``.
QWEN2_5_VL_PRESETS = {
    'qwen2.5-vl-7b': dict(
        vision_config=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=3584,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            tokens_per_second=2,
        ),
        text_config=dict(
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            max_position_embeddings=128000,
            vocab_size=152064,
            rms_norm_eps=1e-6,
            rope_parameters=dict(
                rope_type='default', rope_theta=1000000.0, mrope_section=[16, 24, 24]
            ),
        ),
        tie_word_embeddings=False,
    ),
}
#: SAM 2.1 Hiera-L (facebook/sam2.1-hiera-large's config.json), for random SAM 2 parts.
SAM2_1_HIERA_L = dict(
    vision_config=dict(
        backbone_config=dict(
            model_type='sam2_hiera_det_model',
            hidden_size=144,
            num_attention_heads=2,
            blocks_per_stage=[2, 6, 36, 4],
            embed_dim_per_stage=[144, 288, 576, 1152],
            num_attention_heads_per_stage=[2, 4, 8, 16],
            window_size_per_stage=[8, 4, 16, 8],
            global_attention_blocks=[23, 33, 43],
            window_positional_embedding_background_size=[7, 7],
        ),
        backbone_channel_list=[1152, 576, 288, 144],
    ),
)
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
        '--random-qwen',
        choices=sorted(QWEN2_5_VL_PRESETS),
        help='replace the backbone weights by a random Qwen2.5-VL of this size',
    )
    parser.add_argument(
        '--meta',
        action='store_true',
        help='build on the meta device (sizes only, no memory, no steps)',
    )
    parser.add_argument('--steps', type=int, default=0, help='training steps to measure')
    parser.add_argument('--infer', type=int, default=0, help='images to time inference on')
    parser.add_argument(
        '--random-dir',
        help='folder for the random LLaVA of --random-llava (written once, then reused); '
        'without it the random model is built in memory',
    )
    parser.add_argument(
        '--synthetic-data',
        action='store_true',
        help='measure on generated ReasonSeg-format data (default with --random-llava)',
    )
    parser.add_argument('--amp', action='store_true', help='bf16 autocast on CUDA')
    parser.add_argument('--out', help='write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def llava_config(preset: str) -> dict:
    """``LlavaConfig`` keyword arguments of a preset (LLaMA vocabulary, MHA)."""
    vision, text = LLAVA_PRESETS[preset]
    text = dict(model_type='llama', max_position_embeddings=4096, **text)
    text['num_key_value_heads'] = text['num_attention_heads']
    return dict(
        vision_config=vision,
        text_config=text,
        vision_feature_layer=-2,
        vision_feature_select_strategy='default',
    )


def word_tokenizer() -> dict:
    """An offline tokenizer config with a LLaMA-sized vocabulary."""
    return dict(type='WordTokenizer', numbered_words=LLAMA_VOCAB)


def write_random_llava(preset: str, folder: str, dtype: str = 'bfloat16') -> str:
    """Save a randomly initialised LLaVA of ``preset`` size to ``folder`` (HF format).

    Built on the GPU when there is one (seconds instead of minutes for 7B); reused when
    ``folder`` already holds the weights of one.
    """
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    weights = ('model.safetensors', 'model.safetensors.index.json')
    if any(osp.isfile(osp.join(folder, name)) for name in weights):  # written last
        return folder
    cfg = llava_config(preset)
    text = dict(cfg.pop('text_config'), vocab_size=LLAMA_VOCAB)
    config = LlavaConfig(text_config=text, **cfg)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    tic = time.perf_counter()
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=getattr(torch, dtype))
    model.save_pretrained(folder)
    print(f'random {preset} written to {folder} in {time.perf_counter() - tic:.1f} s')
    del model
    if device == 'cuda':
        torch.cuda.empty_cache()
    return folder


def random_mask_parts(model: dict) -> None:
    """SAM / SAM 2 encoder and head of ``model`` with random weights of the same size."""
    for part in ('sam_encoder', 'head'):
        if model[part]['type'].startswith('SAM2'):
            model[part].update(pretrained=None, sam2_config=copy.deepcopy(SAM2_1_HIERA_L))
        else:
            model[part]['checkpoint'] = None


def model_config(
    cfg: Config,
    preset: str,
    meta: bool,
    random_dir: Optional[str] = None,
    qwen_preset: Optional[str] = None,
) -> tuple[dict, dict]:
    """The model config to build and the quantization to estimate (meta builds skip it)."""
    model = copy.deepcopy(cfg.model.to_dict())
    backbone = model['backbone']
    if qwen_preset:  # sizes only: a random Qwen2.5-VL, built in memory or on meta
        qwen = copy.deepcopy(QWEN2_5_VL_PRESETS[qwen_preset])
        backbone.update(pretrained=None, qwen_config=qwen)
        drop_deprecated_keys(backbone, ['processor.tokenizer'])  # the processor owns it
        backbone['processor'] = dict(backbone.get('processor') or {}, tokenizer=word_tokenizer())
        random_mask_parts(model)
    if preset:
        if meta or random_dir is None:
            backbone.update(pretrained=None, llava_config=llava_config(preset))
        else:
            backbone.update(pretrained=write_random_llava(preset, random_dir), llava_config=None)
        drop_deprecated_keys(backbone, ['processor.tokenizer'])  # the processor owns it
        backbone['processor'] = dict(backbone.get('processor') or {}, tokenizer=word_tokenizer())
        random_mask_parts(model)
    # Measure the encoder itself: a warm embedding cache would skip it (and random weights
    # would fill the cache folder with entries no run can use).
    model['sam_encoder'].pop('cache', None)
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


def synthetic_dataset(cfg: Config, model_cfg: dict, root: str, num: int) -> dict:
    """The config's train dataset on ``num`` generated ReasonSeg-format samples.

    The samples are backbone-neutral (the model's processor tokenizes them); every query
    has as many words as the backbone's ``processor.max_text_length`` (or
    ``max_length``), so the tokenized text reaches the cut.
    """
    from lisakit.datasets.synthetic import write_reasonseg_folder

    dataset = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
    if 'pipeline' not in dataset:  # a mix: the pipeline of its last source (LISA's: ReasonSeg)
        leaf = dataset
        while 'pipeline' not in leaf:
            leaf = leaf['datasets'][-1]
        dataset = dict(type=dataset['type'], pipeline=leaf['pipeline'])
    # the (random) backbone's processor renders the text: fill it to its length limit
    processor = model_cfg['backbone'].get('processor') or {}
    limit = processor.get('max_text_length') or processor.get('max_length') or 0
    query = ' '.join(f'w{i}' for i in range(max(limit, 1)))
    write_reasonseg_folder(root, 'train', num, query=query)
    if dataset['type'] != 'ReasonSegDataset':  # other sources' arguments do not apply
        dataset = dict(pipeline=dataset['pipeline'])
    steps = [step['type'] for step in dataset['pipeline']]
    if 'LoadReasonSegAnnotation' not in steps:  # after LoadImageFromFile
        dataset['pipeline'].insert(
            steps.index('LoadImageFromFile') + 1, dict(type='LoadReasonSegAnnotation')
        )
    dataset.update(type='ReasonSegDataset', data_root=root, split='train')
    return dataset


def load_batches(dataset_cfg: dict, batch_size: int, count: int) -> list:
    """``count`` batches of ``batch_size`` samples of the dataset (cycled)."""
    from mmengine.dataset import pseudo_collate

    from lisakit.registry import DATASETS

    dataset = DATASETS.build(dataset_cfg)
    items = [dataset[i % len(dataset)] for i in range(batch_size * count)]
    return [pseudo_collate(items[i : i + batch_size]) for i in range(0, len(items), batch_size)]


def _autocast(device: str, amp: bool):
    """bf16 autocast on CUDA when asked (the recipe's AmpOptimWrapper), else a no-op."""
    if amp and device == 'cuda':
        return torch.autocast('cuda', dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _peak(device: str) -> dict:
    """Peak memory since the last reset: allocated (and reserved on CUDA), in GiB."""
    peak, source = peak_memory_gb()
    result = dict(peak_gib=peak, peak_source=source)
    if device == 'cuda':
        result['peak_reserved_gib'] = torch.cuda.max_memory_reserved() / 1024**3
    return result


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def measure_steps(model: torch.nn.Module, batches: list, device: str, amp: bool) -> dict:
    """Train on ``batches`` (the first is a warm-up); time per step and peak memory."""
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times, lengths = [], []
    for batch in batches:
        _sync(device)
        tic = time.perf_counter()
        data = model.data_preprocessor(batch, True)
        lengths.append(int(data['inputs']['input_ids'].shape[1]))
        with _autocast(device, amp):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)  # mmengine's sum of the loss_* terms
        optim.zero_grad()
        loss.backward()
        optim.step()
        _sync(device)
        times.append(time.perf_counter() - tic)
    peak = _peak(device)
    step_s = statistics.median(times[1:] or times)
    print(
        f'train: {len(times)} steps (first = warm-up), batch {len(batches[0]["data_samples"])}, '
        f'text length {max(lengths)} tokens + image tokens: median {step_s:.3f} s/step, '
        f'peak {peak}, last loss {loss.item():.3f}'
    )
    return dict(step_s=step_s, text_tokens=max(lengths), **peak)


@torch.no_grad()
def measure_inference(model: torch.nn.Module, batches: list, device: str, amp: bool) -> dict:
    """Latency per image (batch 1) in both predict modes; peak memory of inference."""
    model.eval()
    result, configured_mode = {}, model.predict_mode
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for mode in ('teacher_forced', 'generate'):
        model.predict_mode = mode
        times = []
        for batch in batches:
            _sync(device)
            tic = time.perf_counter()
            data = model.data_preprocessor(batch, False)
            with _autocast(device, amp):
                model(**data, mode='predict')
            _sync(device)
            times.append(time.perf_counter() - tic)
        result[f'{mode}_s'] = statistics.median(times[1:] or times)
    model.predict_mode = configured_mode
    peak = _peak(device)
    tokens = model.generation_cfg.get('max_new_tokens')
    print(
        f'inference (batch 1, first = warm-up): teacher-forced {result["teacher_forced_s"]:.3f} '
        f's/image, generate (max_new_tokens={tokens}) {result["generate_s"]:.3f} s/image, '
        f'peak {peak}'
    )
    return dict(result, max_new_tokens=tokens, **peak)


def run_measurements(args, cfg: Config, model_cfg: dict, model: torch.nn.Module) -> dict:
    """Inference, then training, on the config's data or generated data."""
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device)
    batch_size = cfg.train_dataloader.batch_size
    with tempfile.TemporaryDirectory() as root:
        if args.synthetic_data:
            dataset = synthetic_dataset(cfg, model_cfg, root, batch_size * max(args.steps, 1))
        else:
            dataset = copy.deepcopy(cfg.train_dataloader.dataset.to_dict())
        results = {}
        if args.infer:
            results['inference'] = measure_inference(
                model, load_batches(dataset, 1, args.infer + 1), device, args.amp
            )
        if args.steps:
            results['train'] = measure_steps(
                model, load_batches(dataset, batch_size, args.steps + 1), device, args.amp
            )
    return results


def main() -> int:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'lisakit'))
    args.synthetic_data = args.synthetic_data or bool(args.random_llava)
    model_cfg, quantization = model_config(
        cfg, args.random_llava, args.meta, args.random_dir, qwen_preset=args.random_qwen
    )
    tic = time.perf_counter()
    with torch.device('meta') if args.meta else contextlib.nullcontext():
        model = MODELS.build(model_cfg)
    kind = f'{quantization.get("bits")}-bit estimate' if args.meta and quantization else 'built'
    weights = args.random_llava or args.random_qwen or 'config weights'
    print(f'{args.config} ({weights}, {kind})')
    print(f'build: {time.perf_counter() - tic:.1f} s')
    results = dict(lean_checkpoint_bytes=report(model, quantization, args.meta))
    if (args.steps or args.infer) and not args.meta:
        results.update(run_measurements(args, cfg, model_cfg, model))
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
