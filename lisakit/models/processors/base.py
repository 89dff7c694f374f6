"""The processor seam: what every backbone's processor provides (docs/architecture.md).

A processor owns a backbone's text and image conventions: its tokenizer (with ``<SEG>``,
the image token and an optional rejection token added), its chat template, its image
preprocessing and how many tokens an image takes. Datasets emit backbone-neutral samples
(an RGB image and (question, answer) turns with lisakit's ``<image>`` / ``<SEG>``
placeholders); the data preprocessor calls the backbone's processor on each of them.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

from lisakit.tokenizers import build_tokenizer
from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN
from lisakit.utils.turns import check_image_placeholders

Turns = Sequence[tuple[str, str]]
Image = Union[np.ndarray, torch.Tensor]
#: Sample layouts: one one-turn sequence per query (LISA), or all turns in one sequence.
LAYOUTS = ('per_query', 'multi_turn')
#: The file of a Hugging Face folder that holds its image processor's settings.
PREPROCESSOR_CONFIG = 'preprocessor_config.json'


def as_numpy_image(image: Image, name: str = 'sample') -> np.ndarray:
    """An (H, W, 3) uint8 RGB image as a numpy array (tensors are moved to the CPU).

    Raises:
        ValueError: If the image is not (H, W, 3) uint8, naming ``name``.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f'{name}: the processor takes an (H, W, 3) uint8 RGB image, got shape '
            f'{tuple(image.shape)} {image.dtype}; load it with LoadImageFromFile.'
        )
    return image


class BaseVLProcessor:
    """Render, tokenize and preprocess one neutral sample for a backbone.

    Subclasses implement :meth:`encode_text` and :meth:`preprocess_image` (or :meth:`__call__`
    as a whole), and :meth:`collate_vision` when their vision inputs are not one fixed-size
    tensor per image.

    Args:
        tokenizer: Tokenizer config (see :func:`lisakit.tokenizers.build_tokenizer`): a
            registry dict, a local folder, or a built tokenizer.
        seg_token: Text of the segmentation token in the backbone's vocabulary (samples
            write lisakit's ``<SEG>``; LISA's checkpoints use ``[SEG]``).
        image_token: The backbone's image token, added to the tokenizer when missing.
        rej_token: Text of a rejection token (``[REJ]``) to add, or ``None`` (off).
        layout: ``'per_query'`` (LISA: every turn is its own one-turn sequence, with
            ``"<image>\\n"`` put in front of a question without it) or ``'multi_turn'``
            (all turns in one sequence).
        dialogue_query_types: ``query_type`` values kept as one multi-turn sequence (VQA).

    Attributes:
        tokenizer: The built tokenizer, shared with the backbone.
        seg_token_id / image_token_id / rej_token_id: Their ids (``rej_token_id`` is
            ``None`` when off).
    """

    def __init__(
        self,
        tokenizer: Union[str, dict, PreTrainedTokenizerBase],
        seg_token: str = SEG_TOKEN,
        image_token: str = IMAGE_TOKEN,
        rej_token: Optional[str] = None,
        layout: str = 'per_query',
        dialogue_query_types: Sequence[str] = ('vqa',),
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(
                f'model.backbone.processor.layout={layout!r}; expected one of {LAYOUTS}.'
            )
        self.layout = layout
        self.dialogue_query_types = tuple(dialogue_query_types)
        self.seg_token = seg_token
        self.image_token = image_token
        self.rej_token = rej_token
        self.tokenizer = build_tokenizer(tokenizer, seg_token, image_token)
        if rej_token is not None and rej_token not in self.tokenizer.get_vocab():
            self.tokenizer.add_tokens([AddedToken(rej_token, normalized=False, special=False)])
        self.seg_token_id = self.tokenizer.convert_tokens_to_ids(seg_token)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(image_token)
        self.rej_token_id = (
            None if rej_token is None else self.tokenizer.convert_tokens_to_ids(rej_token)
        )

    @property
    def pad_token_id(self) -> int:
        """The id that pads sequences (masked out by the attention mask)."""
        return self.tokenizer.pad_token_id

    def check_turns(self, turns: Turns, name: str = 'sample') -> list[tuple[str, str]]:
        """The turns as (question, answer) strings, checked: one ``<image>`` in the first
        question and none after it, no ``<SEG>`` in a question; answers' lisakit
        ``<SEG>`` written as this processor's ``seg_token``.

        Raises:
            ValueError: Naming ``name`` and the offending text.
        """
        turns = [tuple(t) for t in turns]
        if not turns or not all(len(t) == 2 and all(isinstance(x, str) for x in t) for t in turns):
            raise ValueError(
                f'{name}: the conversation must be a non-empty list of (question, answer) '
                f'strings, got {turns!r}.'
            )
        check_image_placeholders(turns, name)
        for question, _ in turns:
            if SEG_TOKEN in question or self.seg_token in question:
                raise ValueError(
                    f'{name}: a question contains {SEG_TOKEN!r}; only answers may ({question!r}).'
                )
        if self.seg_token != SEG_TOKEN:  # samples write lisakit's <SEG>, e.g. LISA's [SEG]
            turns = [(q, a.replace(SEG_TOKEN, self.seg_token)) for q, a in turns]
        return turns

    def sequences(self, turns: Turns, query_type: Optional[str]) -> list[list[tuple[str, str]]]:
        """The (checked) turns grouped into sequences according to the layout, with
        lisakit's ``<image>`` placeholder in each sequence's first question."""
        turns = list(turns)
        if self.layout == 'multi_turn' or query_type in self.dialogue_query_types:
            return [turns]
        return [[(q if IMAGE_TOKEN in q else f'{IMAGE_TOKEN}\n{q}', a)] for q, a in turns]

    def encode_sequences(
        self,
        turns: Turns,
        query_type: Optional[str],
        encode: Callable[[list[tuple[str, str]]], tuple[torch.Tensor, torch.Tensor]],
    ) -> dict:
        """``input_ids``, ``labels`` and ``kept_masks`` of :meth:`__call__`: ``encode``
        (one sequence's turns -> its (L,) int64 ids and labels) on each of
        :meth:`sequences`, and the ``<SEG>`` its ids kept."""
        ids, labels, kept, offset = [], [], [], 0
        for seq in self.sequences(turns, query_type):
            seq_ids, seq_labels = encode(seq)
            kept += range(offset, offset + int((seq_ids == self.seg_token_id).sum()))
            offset += sum(a.count(self.seg_token) for _, a in seq)
            ids.append(seq_ids)
            labels.append(seq_labels)
        return dict(input_ids=ids, labels=labels, kept_masks=kept)

    def __call__(
        self,
        image: Image,
        turns: Turns,
        query_type: Optional[str] = None,
        name: str = 'sample',
    ) -> dict:
        """Process one sample: :meth:`encode_text` and :meth:`preprocess_image` (a processor
        whose text depends on the image, e.g. on its token count, overrides this).

        Args:
            image: (H, W, 3) uint8 RGB.
            turns: (question, answer) pairs; ``<image>`` in the first question, ``<SEG>``
                placeholders in the answers; an empty last answer makes a generation
                prompt.
            query_type: The sample's query type (a processor may lay out dialogues
                differently).
            name: How errors name the sample (its image path).

        Returns:
            ``dict(input_ids=[(L_k,) int64], labels=[(L_k,) int64], kept_masks=list[int],
            vision=dict[str, Tensor])``: one id / label tensor per sequence, the indices
            (``<SEG>`` order over all turns) of the ``<SEG>`` that survived truncation,
            and this image's vision inputs.
        """
        out = self.encode_text(turns, query_type, name)
        out['vision'] = self.preprocess_image(image, name)
        return out

    def encode_text(
        self, turns: Turns, query_type: Optional[str] = None, name: str = 'sample'
    ) -> dict:
        """``input_ids``, ``labels`` and ``kept_masks`` of :meth:`__call__`."""
        raise NotImplementedError

    def preprocess_image(self, image: Image, name: str = 'sample') -> dict[str, torch.Tensor]:
        """``vision`` of :meth:`__call__`: this image's tensors."""
        raise NotImplementedError

    def collate_vision(
        self, visions: list[dict], seq_to_sample: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Per-sequence vision inputs of the backbone: sequence n gets image
        ``seq_to_sample[n]``'s tensors, stacked (e.g. ``pixel_values`` (N, 3, s, s)).

        Args:
            visions: B dicts of :meth:`__call__`'s ``vision``.
            seq_to_sample: (N,) int64, the sample of each sequence.
        """
        index = seq_to_sample.tolist()
        return {k: torch.stack([visions[i][k] for i in index]) for k in visions[0]}
