"""Export a trained model to a Hugging Face-style folder and load it back.

Layout of an export folder::

    lisakit_config.py             the config the model is rebuilt from
    adapter/                      peft files (adapter_config.json, adapter_model.safetensors)
    lisakit_weights.safetensors   every other trainable weight (neck, mask decoder, ...)
    tokenizer/                    the tokenizer with lisakit's added tokens
    export_info.json              token ids and library versions
    README.md                     the model card: base model, config, data, metrics, loading
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Optional

from mmengine.config import Config
from safetensors.torch import load_file, save_file
from torch import nn

from lisakit.models.backbones.trainable import drop_deprecated_keys
from lisakit.utils.checkpoint_format import check_token_ids, export_info, trainable_keys
from lisakit.utils.io import atomic_write, dump_json_atomic

CONFIG_FILE = 'lisakit_config.py'
WEIGHTS_FILE = 'lisakit_weights.safetensors'
ADAPTER_DIR = 'adapter'
INFO_FILE = 'export_info.json'
CARD_FILE = 'README.md'


#: A VLM backbone's attribute holding its (peft-wrapped) Hugging Face model and the config
#: key of its random-weights alternative to ``pretrained`` (``hf_attr`` / ``random_config_key``
#: of the backbone; LlavaBackbone's when absent).
DEFAULT_HF_ATTR, DEFAULT_RANDOM_KEY = 'llava', 'llava_config'


def _is_peft(module: nn.Module) -> bool:
    return hasattr(module, 'peft_config')


def _hf_attr(backbone: nn.Module) -> str:
    return getattr(backbone, 'hf_attr', DEFAULT_HF_ATTR)


def _hf_wrapper(backbone: nn.Module) -> nn.Module:
    """The backbone's Hugging Face model, inside peft when it has adapters."""
    return getattr(backbone, _hf_attr(backbone))


def _adapter_names(model: nn.Module) -> set[str]:
    """Trainable parameter names inside the peft model (saved by peft itself)."""
    wrapper = _hf_wrapper(model.backbone)
    if not _is_peft(wrapper):
        return set()
    return {n for n, p in wrapper.named_parameters() if p.requires_grad}


def _randomly_initialised_keys(model: nn.Module, cfg: Config) -> set[str]:
    """State keys of SAM parts built without a checkpoint: random frozen weights cannot be
    rebuilt reliably from a config, so exports carry them."""
    state = model.state_dict()
    parts = [p for p in ('sam_encoder', 'head') if not cfg.model[p].get('checkpoint')]
    return {k for k in state if k.split('.', 1)[0] in parts}


def _base_model(cfg: Config) -> str:
    """The backbone's pretrained weights, or how a random backbone is built."""
    backbone = cfg.model.backbone
    if backbone.get('pretrained'):
        return f'`{backbone.pretrained}` ({backbone.type})'
    key = 'qwen_config' if backbone.get('qwen_config') else DEFAULT_RANDOM_KEY
    return f'{backbone.type} with random weights from `model.backbone.{key}`'


def _data_lines(cfg: Config) -> list[str]:
    """One line per dataloader: dataset type, root and annotation file when set."""
    lines = []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        ds = loader.dataset
        names = [d.get('type') for d in ds.get('datasets', [])] if ds.get('datasets') else []
        what = f'{ds.type} of {", ".join(map(str, names))}' if names else str(ds.type)
        where = ', '.join(f'{k}=`{ds[k]}`' for k in ('data_root', 'ann_file') if ds.get(k))
        lines.append(f'- {split}: {what}' + (f' ({where})' if where else ''))
    return lines


def _metric_lines(metrics: Optional[dict], note: Optional[str] = None) -> list[str]:
    """A markdown table of ``metrics`` (floats to 4 places) after ``note``, or 'Not given.'."""
    if not metrics:
        return ['Not given.']
    if note:
        return [note, '', *_metric_lines(metrics)]
    rows = [
        f'| {k} | {v:.4f} |' if isinstance(v, float) else f'| {k} | {v} |'
        for k, v in metrics.items()
    ]
    return ['| metric | value |', '|---|---|', *rows]


def write_model_card(
    out_dir: str,
    cfg: Config,
    metrics: Optional[dict] = None,
    source: Optional[str] = None,
    metrics_note: Optional[str] = None,
) -> str:
    """Write ``out_dir/README.md``: base model, SAM, config, data, metrics and how to load.

    Args:
        out_dir: The export folder.
        cfg: The config the export was made with.
        metrics: Evaluation results to list (e.g. ``{'cIoU': 0.93, 'gIoU': 0.92}``);
            ``None`` says that none were given.
        source: The checkpoint the export came from.
        metrics_note: Where the metrics come from (a sentence above the table).

    Returns:
        The card's path.
    """
    sam = cfg.model.get('sam_encoder', {})
    sam_text = f'`{sam.checkpoint}`' if sam.get('checkpoint') else 'random (stored in the export)'
    lines = [
        f'# {os.path.basename(os.path.abspath(out_dir))}',
        '',
        'A lisakit (LISA-style reasoning segmentation) model exported by '
        '`tools/model_converters/export.py`.',
        '',
        '## Model',
        '',
        f'- base model: {_base_model(cfg)}',
        f'- SAM: {sam.get("type", "?")}, weights {sam_text}',
        f'- config: `{CONFIG_FILE}` (from `{cfg.filename}`)'
        if cfg.filename
        else f'- config: `{CONFIG_FILE}`',
        f'- exported from: `{source}`' if source else '- exported from: (not recorded)',
        '',
        '## Data',
        '',
        *(_data_lines(cfg) or ['- (no dataloaders in the config)']),
        '',
        '## Metrics',
        '',
        *_metric_lines(metrics, metrics_note),
        '',
        '## How to load',
        '',
        '```python',
        'from lisakit.apis import inference_model, init_model',
        '',
        f"model = init_model('{out_dir}')  # precision='bf16' or load_in_4bit=True for less memory",
        "sample = inference_model(model, 'image.jpg', 'What should I segment?')",
        'print(sample.pred_text, sample.pred_masks.shape, sample.pred_iou_scores)',
        '```',
        '',
        f'or `python tools/infer.py {out_dir} - image.jpg "question"`, or the web demo '
        f'`python tools/app.py {out_dir}`.',
        '',
    ]
    path = os.path.join(out_dir, CARD_FILE)

    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines))

    atomic_write(path, write)
    return path


def _write_export(
    model: nn.Module, out_dir: str, keys: Iterable[str], cfg: Config, info: dict
) -> None:
    """Write the ``keys`` tensors of ``model``, ``cfg`` and ``info`` atomically to ``out_dir``."""
    state = model.state_dict()
    weights = {k: state[k].detach().contiguous() for k in sorted(keys)}
    atomic_write(os.path.join(out_dir, WEIGHTS_FILE), lambda tmp: save_file(weights, tmp))
    atomic_write(os.path.join(out_dir, CONFIG_FILE), cfg.dump)
    dump_json_atomic(info, os.path.join(out_dir, INFO_FILE))


def export_model(
    model: nn.Module,
    cfg: Config,
    out_dir: str,
    metrics: Optional[dict] = None,
    source: Optional[str] = None,
    metrics_note: Optional[str] = None,
) -> dict:
    """Write ``model``'s trainable weights, tokenizer, config and model card to ``out_dir``.

    ``metrics``, ``source`` (the checkpoint) and ``metrics_note`` go into the model card
    (:func:`write_model_card`).

    Returns:
        Counts of exported tensors: ``adapter`` (peft) and ``lisakit`` (the rest).
    """
    os.makedirs(out_dir, exist_ok=True)
    backbone = model.backbone
    adapter_keys: set[str] = set()
    wrapper, prefix = _hf_wrapper(backbone), f'backbone.{_hf_attr(backbone)}.'
    if _is_peft(wrapper):
        wrapper.save_pretrained(os.path.join(out_dir, ADAPTER_DIR))
        adapter_keys = {prefix + n for n in _adapter_names(model)}
    keys = (trainable_keys(model) | _randomly_initialised_keys(model, cfg)) - adapter_keys
    backbone.tokenizer.save_pretrained(os.path.join(out_dir, 'tokenizer'))
    info = export_info(model, adapter_tensors=len(adapter_keys), lisakit_tensors=len(keys))
    _write_export(model, out_dir, keys, cfg, info)
    write_model_card(out_dir, cfg, metrics, source, metrics_note)
    return dict(adapter=len(adapter_keys), lisakit=len(keys))


def load_export(model: nn.Module, export_dir: str) -> None:
    """Load an export folder's weights into a model built from its config (strict)."""
    from peft import set_peft_model_state_dict

    info_file = os.path.join(export_dir, INFO_FILE)
    if os.path.isfile(info_file):
        with open(info_file, encoding='utf-8') as f:
            check_token_ids(model, json.load(f), info_file)
    adapter = os.path.join(export_dir, ADAPTER_DIR, 'adapter_model.safetensors')
    if os.path.isfile(adapter):
        wrapper = _hf_wrapper(model.backbone)
        if not _is_peft(wrapper):
            raise ValueError(f'{export_dir} holds a peft adapter but the model has none.')
        result = set_peft_model_state_dict(wrapper, load_file(adapter))
        if getattr(result, 'unexpected_keys', None):
            raise ValueError(f'Unexpected adapter keys {result.unexpected_keys[:5]}.')
    weights = load_file(os.path.join(export_dir, WEIGHTS_FILE))
    own = model.state_dict()
    unknown = sorted(set(weights) - set(own))
    if unknown:
        raise ValueError(f'{export_dir}/{WEIGHTS_FILE} has keys the model lacks: {unknown[:5]}.')
    prefix = f'backbone.{_hf_attr(model.backbone)}.'
    expected = trainable_keys(model) - {prefix + k for k in _adapter_names(model)}
    missing = sorted(expected - set(weights))
    if missing:
        raise ValueError(f'{export_dir}/{WEIGHTS_FILE} lacks trainable keys {missing[:5]}.')
    model.load_state_dict(weights, strict=False)  # frozen weights come from the config


def merged_config(
    cfg: Config, llava_dir: str, tokenizer_dir: str, random_key: str = DEFAULT_RANDOM_KEY
) -> Config:
    """``cfg`` with the backbone pointing at a merged Hugging Face folder (no adapters) and
    its processor at the exported tokenizer (the other processor settings are kept);
    ``random_key`` is the backbone's random-weights config key, cleared."""
    cfg = Config(cfg.to_dict())  # a copy
    backbone = cfg.model.backbone
    backbone.update(
        pretrained=os.path.abspath(llava_dir),
        **{random_key: None},
        lora=None,
        quantization=None,
        # merged into the folder: nothing of the language model trains (the vision tower and
        # projector keys keep the trained config's values)
        trainable=dict(language_model='frozen', embeddings='none'),
    )
    drop_deprecated_keys(backbone)  # deprecated keys would override the above
    backbone.processor = dict(
        backbone.get('processor') or {}, tokenizer=os.path.abspath(tokenizer_dir)
    )
    return cfg


def export_merged(
    model: nn.Module,
    cfg: Config,
    out_dir: str,
    metrics: Optional[dict] = None,
    source: Optional[str] = None,
    metrics_note: Optional[str] = None,
) -> dict:
    """Fold LoRA and the ``<SEG>`` rows into an *unquantized* base and save it whole.

    Writes ``llava/`` (a full Hugging Face LLaVA folder; ``qwen/`` for Qwen2.5-VL, with its
    ``preprocessor_config.json``), ``tokenizer/``, the other trainable weights, a config
    whose backbone loads that folder and the model card (of the original config: base model
    and data are the trained ones).
    """
    backbone = model.backbone
    hf = _hf_wrapper(backbone)
    if model.backbone.num_quantized_layers:
        raise ValueError(
            'Merging needs an unquantized base: build the model with '
            'model.backbone.quantization=None (tools/model_converters/export.py '
            '--merge does this) and load the checkpoint into it.'
        )
    merged = hf.merge_and_unload() if _is_peft(hf) else hf
    hf_dir = os.path.join(out_dir, _hf_attr(backbone))
    tok_dir = os.path.join(out_dir, 'tokenizer')
    merged.save_pretrained(hf_dir)
    if hasattr(backbone, 'save_pretrained_extras'):  # e.g. Qwen's image processor settings
        backbone.save_pretrained_extras(hf_dir)
    backbone.tokenizer.save_pretrained(tok_dir)
    random_key = getattr(backbone, 'random_config_key', DEFAULT_RANDOM_KEY)
    new_cfg = merged_config(cfg, hf_dir, tok_dir, random_key)
    keys = trainable_keys(model) | _randomly_initialised_keys(model, cfg)
    keys = sorted(k for k in keys if not k.startswith('backbone.'))
    info = export_info(model, merged=True, lisakit_tensors=len(keys))
    _write_export(model, out_dir, keys, new_cfg, info)
    write_model_card(out_dir, cfg, metrics, source, metrics_note)
    return dict(adapter=0, lisakit=len(keys))
