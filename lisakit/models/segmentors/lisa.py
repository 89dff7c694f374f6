"""LISA: LLaVA -> ``<SEG>`` hidden states -> neck -> SAM mask decoder."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from mmengine.model import BaseModel

from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import MASK_LOGIT_THRESHOLD

from .checks import check_dims, head_config, log_trainable, require_parts
from .grouping import (
    fill_generated,
    fill_rows,
    group_rows,
    left_padded_prompts,
    sample_counts,
    sample_mean,
    sequence_samples,
)
from .rejection import rej_token_id, reject_generated, reject_teacher_forced

SampleList = Sequence[ReasonSegDataSample]

PREDICT_MODES = ('teacher_forced', 'generate')
#: LISA's chat.py: greedy, up to 512 new tokens, stopping at EOS (an explanatory answer
#: is a paragraph; 32 tokens would cut it).
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_GENERATION_CFG = dict(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)


@MODELS.register_module()
class LISA(BaseModel):
    """The LISA segmentor: orchestrates backbone -> neck -> head.

    Data flow (one batch): the data preprocessor runs the backbone's processor on the
    neutral samples; the frozen SAM encoder embeds the SAM images (B, C, h, w); the backbone
    (LLaVA) returns the LM logits and the hidden states that predict each ``<SEG>``; the
    neck projects them to the head's prompt space, B x (n_i, C); the head decodes one mask
    per ``<SEG>`` at the original image size and owns the mask losses and predictions.

    Args:
        backbone: Config of the VLM (e.g. ``LlavaBackbone``).
        sam_encoder: Config of the SAM image encoder (``SAMImageEncoder``).
        neck: Config of the ``<SEG>`` projector; ``in_channels`` defaults to the
            backbone hidden size.
        head: Config of the mask head (``SAMHead``), with its losses (``loss_decode``).
        loss_ce: Config of the LM loss (weight 1.0 in LISA).
        loss_bce, loss_dice: Deprecated: moved into ``head.loss_decode`` when set.
        predict_mode: ``'teacher_forced'`` (LISA's validation: masks from the given
            answer) or ``'generate'`` (greedy-decode the answer from the prompt; masks
            from the generated ``<SEG>`` tokens).
        generation_cfg: Keyword arguments of Hugging Face ``generate`` in generate mode.
        reject_texts: Generated answers holding one of these and no ``<SEG>`` reject
            (``pred_rejected``, no mask), as the backbone's ``[REJ]``; see ``rejection.py``.
        data_preprocessor: Config of the data preprocessor.
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        backbone: Optional[dict] = None,
        sam_encoder: Optional[dict] = None,
        neck: Optional[dict] = None,
        head: Optional[dict] = None,
        loss_ce: dict = dict(type='LMCrossEntropyLoss', loss_weight=1.0),
        loss_bce: Optional[dict] = None,
        loss_dice: Optional[dict] = None,
        predict_mode: str = 'teacher_forced',
        generation_cfg: Optional[dict] = None,
        reject_texts: Sequence[str] = (),
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        require_parts(backbone=backbone, sam_encoder=sam_encoder, neck=neck, head=head)
        if predict_mode not in PREDICT_MODES:
            raise ValueError(
                f'model.predict_mode={predict_mode!r}; expected one of {PREDICT_MODES}.'
            )
        self.predict_mode = predict_mode
        self.generation_cfg = dict(DEFAULT_GENERATION_CFG, **(generation_cfg or {}))
        if data_preprocessor is None:
            data_preprocessor = dict(type='LISADataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.data_preprocessor.processor = self.backbone.processor  # the backbone's conventions
        self.rej_token_id, self.reject_texts = rej_token_id(self.backbone), list(reject_texts)
        self.sam_encoder = MODELS.build(sam_encoder)
        neck = dict(neck)
        neck.setdefault('in_channels', self.backbone.hidden_size)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(
            head_config(head, sam_encoder, loss_bce=loss_bce, loss_dice=loss_dice)
        )
        self.loss_ce = MODELS.build(loss_ce)
        check_dims(self.backbone, self.sam_encoder, self.neck, self.head)
        log_trainable(self, ('backbone', 'sam_encoder', 'neck', 'head'))

    def init_weights(self) -> None:
        """Initialize the parts mmengine owns; the backbone's weights come from Hugging Face
        (its quantized parameters cannot go through mmengine's float statistics)."""
        for part in (self.sam_encoder, self.neck, self.head):
            if hasattr(part, 'init_weights'):
                part.init_weights()

    def forward(
        self, inputs: dict, data_samples: Optional[SampleList] = None, mode: str = 'tensor'
    ):
        """mmengine entry point: ``mode`` is ``'loss'``, ``'predict'`` or ``'tensor'``."""
        modes = dict(loss=self.loss, predict=self.predict, tensor=self._forward)
        if mode not in modes:
            raise ValueError(f'Invalid mode {mode!r}; expected "loss", "predict" or "tensor".')
        return modes[mode](inputs, data_samples)

    def extract_feat(self, inputs: dict) -> tuple[dict, Any, list[torch.Tensor]]:
        """SAM encoder + backbone + neck: LM outputs, image features (e.g. (B, C, h, w)) and
        the head's prompts B x (n_i, C).

        The B samples (images) hold N >= B one-turn sequences (``inputs['seq_to_sample']``,
        see ``grouping.py``). The frozen SAM encoder runs once per image, first (as in LISA:
        its transient activations are freed before the LLM's); the backbone runs on the N
        sequences with their images' vision inputs; a sample's prompts are its sequences'
        ``<SEG>`` states, in order.
        """
        num_samples = inputs['sam_images'].shape[0]
        seq_to_sample = sequence_samples(inputs, num_samples)  # (N,)
        seq_counts = (inputs['input_ids'] == self.backbone.seg_token_id).sum(dim=1)  # (N,)
        counts = sample_counts(seq_counts, seq_to_sample, num_samples)  # B x n_i
        image_embeddings = self._embed_images(inputs['sam_images'], counts)  # (B, C, h, w)
        lm = self.backbone(
            inputs['input_ids'],
            inputs['attention_mask'],
            inputs['vision'],  # per sequence, e.g. LLaVA pixel_values (N, 3, s, s)
            inputs.get('labels'),
        )
        lm['seq_to_sample'] = seq_to_sample
        seg_embeds = group_rows(lm['seg_embeds'], seq_to_sample, num_samples)  # B x (n_i, D)
        assert [len(e) for e in seg_embeds] == counts, 'one hidden state per <SEG>'
        prompts = self._project(torch.cat(seg_embeds)).split(counts)  # B x (n_i, C)
        return lm, image_embeddings, list(prompts)

    def _embed_images(self, images: torch.Tensor, counts: Sequence[int]) -> Any:
        """Image features (e.g. (B, C, h, w), or a dict of maps) of the samples with a
        ``<SEG>``; text-only samples (e.g. VQA) skip the encoder and get zeros (the head
        decodes no mask for them, so they add only the LM loss)."""
        keep = [i for i, n in enumerate(counts) if n > 0]
        if len(keep) == len(counts):
            return self.sam_encoder(images)
        if keep:
            return fill_rows(self.sam_encoder(images[keep]), keep, len(counts))
        if hasattr(self.sam_encoder, 'zeros'):
            return self.sam_encoder.zeros(len(counts), images)
        side = self.sam_encoder.embedding_size
        return images.new_zeros((len(counts), self.sam_encoder.out_channels, side, side))

    def loss(self, inputs: dict, data_samples: SampleList) -> dict[str, torch.Tensor]:
        """``loss_ce`` and the head's losses (``loss_bce``, ``loss_dice``, batch gIoU/cIoU).

        Samples without ``<SEG>`` (text-only, e.g. VQA) add only to ``loss_ce``; a batch
        of only such samples has mask losses 0 and no gIoU/cIoU.
        """
        lm, image_embeddings, prompts = self.extract_feat(inputs)
        return dict(
            loss_ce=self._loss_ce(lm), **self.head.loss(image_embeddings, prompts, data_samples)
        )

    def _loss_ce(self, lm: dict, per_sample: bool = False) -> torch.Tensor:
        """LM cross-entropy on full (B, L', V) logits or the backbone's (N, V) selection."""
        if lm.get('logits_batch_index') is None:
            return self.loss_ce(lm['logits'], lm['labels'], per_sample=per_sample)
        return self.loss_ce(
            lm['logits'],
            lm['logits_labels'],
            per_sample=per_sample,
            batch_index=lm['logits_batch_index'],
            batch_size=lm['labels'].shape[0],
        )

    def predict(self, inputs: dict, data_samples: SampleList) -> SampleList:
        """Predict masks in ``self.predict_mode``.

        Teacher-forced (LISA's validation): masks from the given answer; the head fills
        ``pred_masks`` (n_i, H, W) bool, ``pred_iou_scores`` (n_i,) and, with targets, its
        per-sample ``losses``, plus ``loss_ce``: the mean of the sample's sequences' CE (each
        a token mean; training's is the token mean over all sequences, as LISA's). With a
        rejection token, ``pred_rejected``. Generate: see :meth:`predict_generate`.
        """
        if self.predict_mode == 'generate':
            return self.predict_generate(inputs, data_samples)
        lm, image_embeddings, prompts = self.extract_feat(inputs)
        seq_ce = self._loss_ce(lm, per_sample=True)  # (N,)
        ce = sample_mean(seq_ce, lm['seq_to_sample'], len(data_samples))  # (B,)
        self.head.predict(image_embeddings, prompts, data_samples)
        reject_teacher_forced(data_samples, lm, self.backbone.seg_token_id, self.rej_token_id)
        for i, ds in enumerate(data_samples):
            if 'losses' in ds:
                ds.losses = dict(loss_ce=float(ce[i]), **ds.losses)
        return data_samples

    @torch.no_grad()
    def predict_generate(
        self, inputs: dict, data_samples: SampleList, generation_cfg: Optional[dict] = None
    ) -> SampleList:
        """Generate every sequence's answer from its prompt; one mask per generated ``<SEG>``.

        The prompt is the sequence up to its first supervised label; the N prompts are
        generated as one left-padded batch, whose ``<SEG>`` states come from ``generate``.
        A sample's masks are its sequences', in order, and its ``pred_text`` their answers
        joined by newlines. Fills ``pred_text``, ``num_generated_seg``, ``pred_masks``,
        ``pred_iou_scores`` and, with a rejection token or texts, ``pred_rejected``. With
        targets, missing masks count as empty predictions and extra ones are dropped (per
        sequence when the given answers hold one ``<SEG>`` per target, else per sample).
        ``generation_cfg`` updates ``self.generation_cfg`` for this call.
        """
        generation_cfg = dict(self.generation_cfg, **(generation_cfg or {}))
        num_samples = inputs['sam_images'].shape[0]
        seq_to_sample = sequence_samples(inputs, num_samples)  # (N,)
        tokenizer, seg_id = self.backbone.tokenizer, self.backbone.seg_token_id
        ids, mask = left_padded_prompts(
            inputs['input_ids'], inputs['labels'], tokenizer.pad_token_id, self.loss_ce.ignore_index
        )  # (N, P)
        out = self.backbone.generate(ids, mask, inputs['vision'], **generation_cfg)
        texts = tokenizer.batch_decode(out['new_tokens'], skip_special_tokens=True)  # N
        seq_k = [len(e) for e in out['seg_embeds']]  # N: generated <SEG> per sequence
        counts = sample_counts(torch.tensor(seq_k), seq_to_sample.cpu(), num_samples)
        prompts = self._project(torch.cat(out['seg_embeds'])).split(counts)  # B x (n_i, C)
        image_embeddings = self.sam_encoder(inputs['sam_images'])  # (B, C, h, w)
        masks, ious = self.head.predict_masks(image_embeddings, prompts, data_samples)
        given = (inputs['input_ids'] == seg_id).sum(dim=1).tolist()  # N
        preds = [((m > MASK_LOGIT_THRESHOLD).cpu(), s.float().cpu()) for m, s in zip(masks, ious)]
        samples = seq_to_sample.tolist()  # N
        fill_generated(data_samples, preds, texts, seq_k, given, samples)
        reject_generated(
            data_samples, out, texts, samples, seg_id, self.rej_token_id, self.reject_texts
        )
        return data_samples

    def _project(self, seg_embeds: torch.Tensor) -> torch.Tensor:
        """Neck on (N, D) ``<SEG>`` states, cast to the neck's dtype (a bf16 / fp16 or
        quantized LLM may feed a float32 neck) -> (N, C)."""
        dtype = next(self.neck.parameters()).dtype
        return self.neck(seg_embeds.to(dtype))

    def _forward(self, inputs: dict, data_samples: SampleList) -> list[torch.Tensor]:
        """Mask logits per sample, (n_i, H_i, W_i)."""
        _, image_embeddings, prompts = self.extract_feat(inputs)
        return self.head.predict_masks(image_embeddings, prompts, data_samples)[0]
