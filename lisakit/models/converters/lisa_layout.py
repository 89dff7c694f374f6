"""LISA's official checkpoint layout and its mapping onto lisakit's model keys.

The official layout (``LISAForCausalLM`` after LISA's merge script, see
``reference/lisa.md`` section 9.1) maps onto lisakit's model as follows:

- ``lm_head.`` -> ``backbone.llava.lm_head.``
- ``model.{embed_tokens,layers,norm}.`` -> ``backbone.llava.model.language_model.*``
- ``model.mm_projector.`` -> ``backbone.llava.model.multi_modal_projector.linear.``
- ``model.vision_tower.vision_tower.vision_model.`` -> ``backbone.llava.model.vision_tower.``
  (absent from released checkpoints: the tower then comes from a CLIP folder)
- ``model.visual_model.image_encoder.`` -> ``sam_encoder.encoder.``
- ``model.visual_model.prompt_encoder.`` -> ``head.prompt_encoder.``
- ``model.visual_model.mask_decoder.`` -> ``head.mask_decoder.``
- ``model.text_hidden_fcs.0.`` -> ``neck.fc.``

Converted folders hold ``llava/`` (with the tokenizer), ``sam.pth``,
``lisakit_checkpoint.pth``, ``lisakit_config.py`` and ``export_info.json`` (see
``lisa_official.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

#: LISA's segmentation token text (lisakit's default is ``<SEG>``).
LISA_SEG_TOKEN = '[SEG]'
LLAVA_PREFIX = 'backbone.llava.'
#: Official key prefix -> lisakit key prefix.
KEY_MAP = (
    ('lm_head.', 'backbone.llava.lm_head.'),
    ('model.embed_tokens.', 'backbone.llava.model.language_model.embed_tokens.'),
    ('model.layers.', 'backbone.llava.model.language_model.layers.'),
    ('model.norm.', 'backbone.llava.model.language_model.norm.'),
    ('model.mm_projector.', 'backbone.llava.model.multi_modal_projector.linear.'),
    ('model.vision_tower.vision_tower.vision_model.', 'backbone.llava.model.vision_tower.'),
    ('model.visual_model.image_encoder.', 'sam_encoder.encoder.'),
    ('model.visual_model.prompt_encoder.', 'head.prompt_encoder.'),
    ('model.visual_model.mask_decoder.', 'head.mask_decoder.'),
    ('model.text_hidden_fcs.0.', 'neck.fc.'),
)
#: Official keys left out on purpose, with the reason reported for each.
DROP_RULES = (
    (r'\.rotary_emb\.inv_freq$', 'RoPE inverse frequencies: a buffer transformers recomputes'),
    (
        r'^model\.visual_model\.pixel_(mean|std)$',
        "SAM's pixel statistics: SAMPreprocess applies them",
    ),
    (r'\.embeddings\.position_ids$', 'CLIP position ids: a buffer transformers rebuilds'),
)
#: lisakit prefix -> key prefix in a SAM checkpoint.
SAM_PARTS = (
    ('sam_encoder.encoder.', 'image_encoder.'),
    ('head.prompt_encoder.', 'prompt_encoder.'),
    ('head.mask_decoder.', 'mask_decoder.'),
)
SAM_PREFIXES = tuple(ours for ours, _ in SAM_PARTS)
LLAVA_DIR = 'llava'
SAM_FILE, CHECKPOINT_FILE = 'sam.pth', 'lisakit_checkpoint.pth'
CONFIG_FILE, INFO_FILE = 'lisakit_config.py', 'export_info.json'
MAX_LISTED = 5


@dataclass
class ConversionReport:
    """What the conversion did; written to ``export_info.json``."""

    source: str
    num_source_keys: int
    num_mapped: int
    dropped: dict = field(default_factory=dict)  # source key -> reason
    vision_tower: str = 'checkpoint'  # or the CLIP folder the tower came from
    added_tokens: list = field(default_factory=list)
    seg_token: str = LISA_SEG_TOKEN
    seg_token_id: int = -1
    image_token_id: int = -1
    vocab_size: int = 0

    def summary(self) -> str:
        """Human-readable counts (one line per dropped key)."""
        lines = [
            f'{self.num_source_keys} source tensors: {self.num_mapped} mapped, '
            f'{len(self.dropped)} dropped',
            *(f'  dropped {k}: {why}' for k, why in sorted(self.dropped.items())),
            f'CLIP tower from: {self.vision_tower}',
            (f'{self.seg_token} id {self.seg_token_id}, ' if self.seg_token else '')
            + f'<image> id {self.image_token_id}, vocab {self.vocab_size} '
            f'(added {self.added_tokens})',
        ]
        return '\n'.join(lines)


def map_keys(keys: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Map official keys to lisakit keys.

    Returns:
        ``(mapped, dropped)``: source key -> lisakit key, and source key -> reason.

    Raises:
        ValueError: For raw training (PEFT) checkpoints and unknown keys.
    """
    keys = list(keys)
    if any(k.startswith('base_model.model.') or '.lora_' in k for k in keys):
        raise ValueError(
            'This is a raw LISA training checkpoint (PEFT prefix / LoRA factors). Merge it '
            "first with LISA's merge_lora_weights_and_save_hf_model.py, then convert the "
            'merged folder.'
        )
    mapped, dropped, unknown = {}, {}, []
    for key in keys:
        reason = next((why for pat, why in DROP_RULES if re.search(pat, key)), None)
        if reason is not None:
            dropped[key] = reason
            continue
        rule = next(((s, d) for s, d in KEY_MAP if key.startswith(s)), None)
        if rule is None:
            unknown.append(key)
        else:
            mapped[key] = rule[1] + key[len(rule[0]) :]
    if unknown:
        raise ValueError(
            f"{len(unknown)} keys are not in LISA's layout, e.g. {sorted(unknown)[:MAX_LISTED]}; "
            'expected a merged LISA checkpoint (LISAForCausalLM state dict).'
        )
    return mapped, dropped


def check_state(state: dict, expected: dict, what: str, fix: str) -> None:
    """Strict key and shape check of ``state`` against ``expected`` (key -> shape).

    Raises:
        ValueError: Naming missing / unexpected / mis-shaped keys and ``fix``.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k])}'
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k])
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f'{what}: {len(missing)} missing {missing[:MAX_LISTED]}, {len(unexpected)} '
            f'unexpected {unexpected[:MAX_LISTED]}, {len(wrong)} shape mismatches '
            f'{wrong[:MAX_LISTED]}. {fix}'
        )
