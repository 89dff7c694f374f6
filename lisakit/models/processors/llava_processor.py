"""LLaVA's processor: LISA's conversation rendering and tokenization, and CLIP pixels."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch
from transformers import CLIPImageProcessor, CLIPImageProcessorPil, PreTrainedTokenizerBase

from lisakit.registry import PROCESSORS
from lisakit.tokenizers import (
    IM_END_TOKEN,
    IM_START_TOKEN,
    TEXT_ENCODINGS,
    ConversationEncoder,
    get_template,
    is_sentencepiece_llama,
)
from lisakit.utils.constants import CLIP_PIXEL_MEAN, CLIP_PIXEL_STD, IMAGE_TOKEN, SEG_TOKEN

from .base import PREPROCESSOR_CONFIG, BaseVLProcessor, Image, Turns, as_numpy_image

#: LISA's ``model_max_length``: the default cut, in tokens after the image is expanded.
LISA_MAX_LENGTH = 512
#: CLIP image processor classes by backend (Pillow: transformers 4.31's arithmetic).
CLIP_BACKENDS = {'pil': CLIPImageProcessorPil, 'torchvision': CLIPImageProcessor}


@PROCESSORS.register_module()
class LlavaProcessor(BaseVLProcessor):
    """LLaVA's text and image conventions, as LISA's code applies them.

    Text: the sample's turns rendered with a conversation template and tokenized (see
    :class:`lisakit.tokenizers.conversation.ConversationEncoder`); labels are LISA's
    (-100 but the answers and their ``</s>``). The ids keep one ``<image>`` token: the
    backbone expands it into the visual features (``LlavaBackbone.expand_image_tokens``).

    Layouts:

    - ``'per_query'`` (LISA): every turn is its own one-turn sequence with its own
      ``<image>`` prompt (``"<image>\\n"`` is put in front of a question without one),
      as LISA's datasets make ``num_classes_per_sample`` conversations per image. Samples
      whose ``query_type`` is in ``dialogue_query_types`` (VQA) stay one sequence.
    - ``'multi_turn'``: all turns in one sequence (``... ASSISTANT: a1</s>USER: q2 ...``).

    Length limit as LISA's ``collate_fn``: a sequence is cut hard at ``max_length -
    (num_image_features - 1)`` tokens counted with the image as one token (and
    ``<im_start>`` / ``<im_end>``), so it holds at most ``max_length`` tokens once the image
    is expanded. ``kept_masks`` lists the ``<SEG>`` that survived.

    Image: transformers' CLIP image processor (resize the shortest side, center-crop,
    rescale, normalize) -> ``vision=dict(pixel_values=(3, s, s))``. The default
    ``backend='pil'`` resizes with Pillow as transformers 4.31 (LISA's) does: its pixels
    equal LISA's to float32 precision (tested against a recorded fixture); the
    torchvision backend moves about 0.1% of the values by one 8-bit level.

    The backbone fills ``num_image_features``, ``image_size`` and ``image_processor`` from
    its model config (never typed by hand in a config).

    Args:
        tokenizer: Tokenizer config (the backbone defaults it to its ``pretrained`` folder).
        template: Conversation template name or dict.
        max_length: LISA's ``model_max_length``: tokens after image expansion; ``None``
            for no cut.
        max_text_length: The same cut counted with the image as one token (and
            ``<im_start>`` / ``<im_end>`` one each): LISA's 257 = 512 - 255. When set it
            replaces the default ``max_length`` (which becomes ``max_text_length +
            num_image_features - 1``), so a config never adds the feature count by hand;
            another ``max_length`` with it raises.
        layout: ``'per_query'`` or ``'multi_turn'``.
        text_encoding: ``'lisa'`` (transformers 4.31 slow LLaMA tokenizer, LISA's label
            rule), ``'tokenizer'`` (the tokenizer's own encoding), or ``None``: ``'lisa'``
            for LLaMA sentencepiece tokenizers, else ``'tokenizer'``.
        use_im_start_end: LISA's ``<im_start><image><im_end>`` (LLaVA-v1 checkpoints; the
            backbone inserts them when it expands ``<image>``). ``None``: when the
            tokenizer holds both tokens (LISA's does).
        dialogue_query_types: ``query_type`` values kept as one multi-turn sequence.
        num_image_features: Visual features that replace ``<image>`` (256 for CLIP
            ViT-L/14 at 224 px, 576 at 336 px).
        image_size: CLIP input side s (shortest side and crop).
        image_mean: RGB mean (0-1 scale).
        image_std: RGB std (0-1 scale).
        image_processor: A local folder whose ``preprocessor_config.json`` sets the CLIP
            processor (overrides ``image_size`` / mean / std), or ``None``.
        backend: ``'pil'`` (LISA's values) or ``'torchvision'`` (transformers 5's default).
        seg_token, image_token, rej_token: See :class:`.BaseVLProcessor`.
    """

    def __init__(
        self,
        tokenizer: Union[str, dict, PreTrainedTokenizerBase],
        template: Union[str, dict] = 'llava_v1',
        max_length: Optional[int] = LISA_MAX_LENGTH,
        max_text_length: Optional[int] = None,
        layout: str = 'per_query',
        text_encoding: Optional[str] = None,
        use_im_start_end: Optional[bool] = None,
        dialogue_query_types: Sequence[str] = ('vqa',),
        num_image_features: Optional[int] = None,
        image_size: Optional[int] = None,
        image_mean: Sequence[float] = CLIP_PIXEL_MEAN,
        image_std: Sequence[float] = CLIP_PIXEL_STD,
        image_processor: Optional[str] = None,
        backend: str = 'pil',
        seg_token: str = SEG_TOKEN,
        image_token: str = IMAGE_TOKEN,
        rej_token: Optional[str] = None,
    ) -> None:
        self._check_options(text_encoding, backend, num_image_features, image_size)
        super().__init__(tokenizer, seg_token, image_token, rej_token, layout, dialogue_query_types)
        if max_text_length is not None:
            if max_length != LISA_MAX_LENGTH:
                raise ValueError(
                    f'model.backbone.processor sets max_length={max_length} and '
                    f'max_text_length={max_text_length}; keep one (max_text_length=None to '
                    'cut by max_length).'
                )
            max_length = max_text_length + num_image_features - 1
        self.cut_length = None
        if max_length is not None:
            self.cut_length = max_length - (num_image_features - 1)
            if self.cut_length < 2:
                raise ValueError(
                    f'LlavaProcessor: max_length={max_length} leaves no room for text next '
                    f'to {num_image_features} image features; raise '
                    'model.backbone.processor.max_text_length (at least 2).'
                )
        self.max_length = max_length
        self.num_image_features = num_image_features
        tok = self.tokenizer
        if text_encoding is None:
            text_encoding = 'lisa' if is_sentencepiece_llama(tok) else 'tokenizer'
        if use_im_start_end is None:
            use_im_start_end = {IM_START_TOKEN, IM_END_TOKEN} <= set(tok.get_vocab())
        self.use_im_start_end = bool(use_im_start_end)
        self.encoder = ConversationEncoder(
            tok, get_template(template), text_encoding, self.use_im_start_end, image_token
        )
        self.im_start_end_ids = self.encoder.im_ids  # (im_start, im_end) or None
        self.image_processor = self._build_image_processor(
            backend, image_size, image_mean, image_std, image_processor
        )

    @staticmethod
    def _check_options(
        text_encoding: Optional[str],
        backend: str,
        num_image_features: Optional[int],
        image_size: Optional[int],
    ) -> None:
        if text_encoding not in (None, *TEXT_ENCODINGS):
            raise ValueError(
                f'model.backbone.processor.text_encoding={text_encoding!r}; expected None or '
                f'one of {TEXT_ENCODINGS}.'
            )
        if backend not in CLIP_BACKENDS:
            raise ValueError(
                f'model.backbone.processor.backend={backend!r}; expected one of '
                f'{sorted(CLIP_BACKENDS)}.'
            )
        if num_image_features is None or image_size is None:
            raise ValueError(
                'LlavaProcessor needs num_image_features and image_size: LlavaBackbone fills '
                'them from its model config; a processor built on its own must be given both.'
            )

    @staticmethod
    def _build_image_processor(backend, size, mean, std, folder):
        """transformers' CLIP processor from a folder's preprocessor_config.json or sizes."""
        processor_cls = CLIP_BACKENDS[backend]
        if folder is not None:
            if not os.path.isfile(os.path.join(folder, PREPROCESSOR_CONFIG)):
                raise FileNotFoundError(
                    f'model.backbone.processor.image_processor={folder!r} holds no '
                    f'{PREPROCESSOR_CONFIG}; point it to a Hugging Face folder that does, or '
                    'set it to None to build CLIP preprocessing from the vision config.'
                )
            return processor_cls.from_pretrained(folder, local_files_only=True)
        return processor_cls(
            size={'shortest_edge': size},
            crop_size={'height': size, 'width': size},
            image_mean=list(mean),
            image_std=list(std),
        )

    # ------------------------------------------------------------------ text
    def encode_text(
        self, turns: Turns, query_type: Optional[str] = None, name: str = 'sample'
    ) -> dict:
        """``input_ids`` / ``labels`` (one (L_k,) int64 tensor per sequence) and
        ``kept_masks`` (see :meth:`.BaseVLProcessor.__call__`)."""
        return self.encode_sequences(self.check_turns(turns, name), query_type, self._encode)

    def _encode(self, seq: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(L,) int64 ids and labels of one sequence, cut at LISA's length."""
        if self.image_token != IMAGE_TOKEN:
            seq = [(q.replace(IMAGE_TOKEN, self.image_token), a) for q, a in seq]
        ids, labels = self.encoder.encode(seq, self.cut_length)
        return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)

    # ----------------------------------------------------------------- image
    def preprocess_image(self, image: Image, name: str = 'sample') -> dict[str, torch.Tensor]:
        """``dict(pixel_values=(3, s, s) float32)``: the CLIP pixels of one image."""
        out = self.image_processor(images=as_numpy_image(image, name), return_tensors='pt')
        return dict(pixel_values=out['pixel_values'][0].float())
