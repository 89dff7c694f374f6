"""Qwen2.5-VL's processor: chat template, image tokens and dynamic-resolution pixels.

Renders a neutral sample (an image and (question, answer) turns with ``<image>`` / ``<SEG>``
placeholders) as Qwen2.5-VL-Instruct's chat template does (its ``chat_template.json``)::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n
    <|im_start|>user\\n{q1}<|im_end|>\\n<|im_start|>assistant\\n{a1}<|im_end|>\\n ...

with the ``<image>`` placeholder replaced in place by ``<|vision_start|>`` + ``<|image_pad|>``
x n + ``<|vision_end|>``, n = t * h * w / merge ** 2 for the image's patch grid (what
transformers' ``Qwen2_5_VLProcessor`` writes; the QwenLM fine-tuning code replaces LLaVA-style
``<image>`` the same way). The whole text is tokenized at once, as Hugging Face's processor
does, so the ids equal ``tokenizer(apply_chat_template(...))`` with the image expanded.

Labels: the answer tokens and their ``<|im_end|>``; the ``\\n`` after ``<|im_end|>`` and
everything else is ignored. The QwenLM fine-tuning code also supervises that ``\\n``, but
generation stops at ``<|im_end|>`` (the Instruct models' EOS), so the ``\\n`` is never
generated; labelling answer + end token is also LISA's rule for LLaVA (answer + ``</s>``).

Images: transformers' ``Qwen2VLImageProcessor`` (smart resize to multiples of
patch x merge within ``[min_pixels, max_pixels]``, CLIP normalisation, flattened patches),
read from the pretrained folder's ``preprocessor_config.json`` or built from the vision
config for random models.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase, Qwen2VLImageProcessor

from lisakit.registry import PROCESSORS
from lisakit.utils.constants import IMAGE_TOKEN, LM_IGNORE_INDEX, SEG_TOKEN

from .base import PREPROCESSOR_CONFIG, BaseVLProcessor, as_numpy_image

#: Qwen2.5-VL's chat and vision tokens.
QWEN_IM_START = '<|im_start|>'
QWEN_IM_END = '<|im_end|>'
QWEN_IMAGE_TOKEN = '<|image_pad|>'
QWEN_VISION_START = '<|vision_start|>'
QWEN_VISION_END = '<|vision_end|>'
QWEN_SPECIAL_TOKENS = (QWEN_IM_START, QWEN_IM_END, QWEN_VISION_START, QWEN_VISION_END)
#: The system prompt Qwen2.5-VL-Instruct's template inserts when a chat has none.
QWEN_DEFAULT_SYSTEM = 'You are a helpful assistant.'
#: Keys of a vision config the image processor needs (model config name -> processor name).
VISION_KEYS = dict(
    patch_size='patch_size',
    temporal_patch_size='temporal_patch_size',
    spatial_merge_size='merge_size',
)


def add_qwen_tokens(tokenizer: PreTrainedTokenizerBase) -> None:
    """Add Qwen's chat / vision tokens as special tokens where missing (tiny tokenizers)."""
    vocab = tokenizer.get_vocab()
    missing = [AddedToken(t, normalized=False) for t in QWEN_SPECIAL_TOKENS if t not in vocab]
    if missing:
        tokenizer.add_special_tokens(
            {'additional_special_tokens': missing}, replace_extra_special_tokens=False
        )


def build_image_processor(
    pretrained: Optional[str],
    vision_config: Optional[dict],
    min_pixels: Optional[int],
    max_pixels: Optional[int],
) -> Qwen2VLImageProcessor:
    """``Qwen2VLImageProcessor`` from a folder's ``preprocessor_config.json`` or a vision config.

    Args:
        pretrained: Local Hugging Face folder (read when ``vision_config`` is None).
        vision_config: The model's vision config (``patch_size``, ``temporal_patch_size``,
            ``spatial_merge_size``) for a random model; CLIP mean / std as Qwen's.
        min_pixels, max_pixels: Pixel-count bounds of the resize (None: the folder's values,
            or transformers' defaults).
    """
    bounds = {k: v for k, v in dict(min_pixels=min_pixels, max_pixels=max_pixels).items() if v}
    if vision_config is not None:
        sizes = {
            new: vision_config[old] for old, new in VISION_KEYS.items() if old in vision_config
        }
        return Qwen2VLImageProcessor(**sizes, **bounds)
    path = os.path.join(str(pretrained), PREPROCESSOR_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: Qwen2_5_VLProcessor reads the image settings of a pretrained '
            'Qwen2.5-VL folder from it. Point model.backbone.pretrained at a full local '
            'Hugging Face folder (e.g. Qwen2.5-VL-7B-Instruct).'
        )
    return Qwen2VLImageProcessor.from_pretrained(pretrained, local_files_only=True, **bounds)


@PROCESSORS.register_module()
class Qwen2_5_VLProcessor(BaseVLProcessor):  # noqa: N801 (the model family's name)
    """Tokenizer, chat template and image preprocessing of a Qwen2.5-VL backbone.

    Args:
        tokenizer: Tokenizer config (:func:`lisakit.tokenizers.build_tokenizer`), e.g. the
            pretrained folder (the backbone's default) or ``dict(type='WordTokenizer')``;
            ``<SEG>`` and Qwen's chat / vision tokens are added when missing.
        pretrained: Local Hugging Face folder whose ``preprocessor_config.json`` sets the
            image processor (used when ``vision_config`` is None).
        vision_config: The model's vision config (random models: the backbone fills it).
        min_pixels, max_pixels: Bounds of the dynamic-resolution resize (pixels per image);
            ``max_pixels`` bounds the image tokens: max_pixels / (patch * merge) ** 2.
        system: System prompt (Qwen's default); ``None``: no system block.
        max_length: Tokens per sequence after image expansion (hard cut, as LISA's); a cut
            inside the image raises. ``None``: no cut.
        max_text_length: The cut counted with the image's ``<|image_pad|>`` tokens as one
            token (``<|vision_start|>`` / ``<|vision_end|>`` count as text, as LISA's
            ``<im_start>`` / ``<im_end>``): each sequence is cut at ``max_text_length +
            num_image_tokens - 1``, where ``num_image_tokens`` is its own image's count
            (it varies with the image size), so every image leaves the same text room.
            Use it or ``max_length``, not both.
        layout: ``'per_query'`` (LISA: one one-turn sequence per query, ``"<image>\\n"`` put
            in front of questions without it) or ``'multi_turn'`` (all turns in one).
        dialogue_query_types: ``query_type`` values kept as one multi-turn sequence (VQA).
        seg_token: Text of the segmentation token.
        rej_token: Text of an optional rejection token (None: off).
    """

    def __init__(
        self,
        tokenizer: Union[str, dict, PreTrainedTokenizerBase],
        pretrained: Optional[str] = None,
        vision_config: Optional[dict] = None,
        min_pixels: Optional[int] = None,
        max_pixels: Optional[int] = None,
        system: Optional[str] = QWEN_DEFAULT_SYSTEM,
        max_length: Optional[int] = None,
        max_text_length: Optional[int] = None,
        layout: str = 'per_query',
        dialogue_query_types: Sequence[str] = ('vqa',),
        seg_token: str = SEG_TOKEN,
        rej_token: Optional[str] = None,
    ) -> None:
        if max_length is not None and max_text_length is not None:
            raise ValueError(
                'model.backbone.processor sets both max_length and max_text_length; keep one.'
            )
        if pretrained is None and vision_config is None:
            raise ValueError(
                'Qwen2_5_VLProcessor needs `pretrained` (a local folder with '
                f'{PREPROCESSOR_CONFIG}) or `vision_config` (the backbone fills both).'
            )
        super().__init__(
            tokenizer, seg_token, QWEN_IMAGE_TOKEN, rej_token, layout, dialogue_query_types
        )
        add_qwen_tokens(self.tokenizer)
        self.image_processor = build_image_processor(
            pretrained, vision_config, min_pixels, max_pixels
        )
        self.system = system
        self.max_length = max_length
        self.max_text_length = max_text_length
        self.im_end_id = self.tokenizer.convert_tokens_to_ids(QWEN_IM_END)

    @property
    def eos_token_id(self) -> int:
        """Where generation stops: ``<|im_end|>`` (the Instruct models' EOS)."""
        return self.im_end_id

    @property
    def merge_size(self) -> int:
        """Side of the patch blocks the ViT's merger folds into one image token (2)."""
        return self.image_processor.merge_size

    # ------------------------------------------------------------------ image
    def preprocess_image(
        self, image: Union[np.ndarray, torch.Tensor], name: str = 'sample'
    ) -> dict[str, torch.Tensor]:
        """(H, W, 3) uint8 RGB -> ``pixel_values`` (P, D) and ``image_grid_thw`` (3,)."""
        image = as_numpy_image(image, name)
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)  # (3, H, W)
        out = self.image_processor(images=[image], return_tensors='pt')
        return dict(pixel_values=out['pixel_values'], image_grid_thw=out['image_grid_thw'][0])

    def num_image_tokens(self, grid_thw: torch.Tensor) -> int:
        """``<|image_pad|>`` tokens of an image: t * h * w / merge ** 2."""
        return int(grid_thw.prod()) // self.merge_size**2

    # ------------------------------------------------------------------- text
    def render(
        self, turns: Sequence[tuple[str, str]], num_image_tokens: int
    ) -> tuple[str, list[tuple[int, int]]]:
        """The chat text of one sequence and the character spans of its labels.

        Args:
            turns: (question, answer) pairs, ``<image>`` in one question; an empty last
                answer ends the text with the generation prompt ``<|im_start|>assistant\\n``.
            num_image_tokens: ``<|image_pad|>`` tokens in place of ``<image>``.

        Returns:
            The text, and the (start, end) character spans of each answer + ``<|im_end|>``.
        """
        image = QWEN_VISION_START + QWEN_IMAGE_TOKEN * num_image_tokens + QWEN_VISION_END
        text = '' if self.system is None else f'{QWEN_IM_START}system\n{self.system}{QWEN_IM_END}\n'
        spans = []
        for question, answer in turns:
            question = question.replace(IMAGE_TOKEN, image)
            text += f'{QWEN_IM_START}user\n{question}{QWEN_IM_END}\n{QWEN_IM_START}assistant\n'
            if answer:
                start = len(text)
                text += answer + QWEN_IM_END
                spans.append((start, len(text)))
                text += '\n'
        return text, spans

    def encode(
        self, turns: Sequence[tuple[str, str]], num_image_tokens: int, name: str = 'sample'
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids and labels (L,) of one sequence, cut at ``max_length`` (or ``max_text_length``
        with the image counted as one token)."""
        text, spans = self.render(turns, num_image_tokens)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = torch.tensor(enc['input_ids'], dtype=torch.long)  # (L,)
        starts = torch.tensor([s for s, _ in enc['offset_mapping']], dtype=torch.long)  # (L,)
        supervised = torch.zeros_like(ids, dtype=torch.bool)
        for start, end in spans:
            supervised |= (starts >= start) & (starts < end)
        labels = torch.where(supervised, ids, LM_IGNORE_INDEX)
        cut = self.max_length
        if self.max_text_length is not None:
            cut = self.max_text_length + num_image_tokens - 1
        if cut is not None:
            ids, labels = ids[:cut], labels[:cut]
        kept = int((ids == self.image_token_id).sum())
        if kept not in (0, num_image_tokens):
            raise ValueError(
                f'{name}: a cut at {cut} tokens cuts the image ({num_image_tokens} image '
                'tokens) short; raise model.backbone.processor.max_length / max_text_length '
                'or lower max_pixels.'
            )
        return ids, labels

    # ----------------------------------------------------------------- sample
    def __call__(
        self,
        image: Union[np.ndarray, torch.Tensor],
        turns: Sequence[tuple[str, str]],
        query_type: Optional[str] = None,
        name: str = 'sample',
    ) -> dict:
        """Render, tokenize and label a sample; preprocess its image (first: the text's
        image token count depends on the image's size).

        Returns:
            ``input_ids`` / ``labels``: lists of (L_k,) int64, one per sequence;
            ``kept_masks``: indices (``<SEG>`` order over all turns) whose ``<SEG>`` survived
            the cut; ``vision``: ``pixel_values`` (P, D) and ``image_grid_thw`` (3,).
        """
        turns = self.check_turns(turns, name)
        vision = self.preprocess_image(image, name)
        n_image = self.num_image_tokens(vision['image_grid_thw'])
        out = self.encode_sequences(turns, query_type, lambda seq: self.encode(seq, n_image, name))
        out['vision'] = vision
        return out

    def collate_vision(self, visions: list[dict], seq_to_sample: torch.Tensor) -> dict:
        """Per-sequence vision inputs: sequence n uses image ``seq_to_sample[n]``.

        Returns:
            ``pixel_values`` (sum_n P_n, D) in sequence order and ``image_grid_thw`` (N, 3).
        """
        order = [int(i) for i in seq_to_sample]
        return dict(
            pixel_values=torch.cat([visions[i]['pixel_values'] for i in order]),
            image_grid_thw=torch.stack([visions[i]['image_grid_thw'] for i in order]),
        )
