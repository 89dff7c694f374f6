"""LISA: LLaVA -> ``<SEG>`` hidden states -> neck -> SAM mask decoder."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import nn

from lisakit.evaluation.functional import intersection_union, summarize_iou
from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample
from lisakit.utils.constants import MASK_LOGIT_THRESHOLD

from .grouping import (
    group_rows,
    is_one_per_sample,
    match_to_targets,
    sample_counts,
    sample_mean,
    sequence_samples,
)

SampleList = Sequence[ReasonSegDataSample]


def _parameter_counts(module: nn.Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


PREDICT_MODES = ('teacher_forced', 'generate')
#: LISA's chat.py: greedy, up to 512 new tokens, stopping at EOS (an explanatory answer
#: is a paragraph; 32 tokens would cut it).
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_GENERATION_CFG = dict(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)

#: An example config for each required part, quoted in the error for a missing one.
REQUIRED_PARTS = dict(
    backbone="dict(type='LlavaBackbone', tokenizer=..., pretrained='/path/to/llava')",
    sam_encoder="dict(type='SAMImageEncoder', arch='vit_h', checkpoint='/path/to/sam.pth')",
    neck="dict(type='SegProjector', out_channels=256)",
    head="dict(type='SAMHead', embed_dim=256)",
)


def _require_parts(**parts: Optional[dict]) -> None:
    for name, cfg in parts.items():
        if cfg is None:
            raise ValueError(
                f'model.{name} is missing; LISA needs a {name} config such as '
                f'{REQUIRED_PARTS[name]}.'
            )


@MODELS.register_module()
class LISA(BaseModel):
    """The LISA segmentor.

    Data flow (one batch): the backbone (LLaVA) runs on the conversation and the
    CLIP image and returns the LM logits and, per sample, the hidden states that
    predict each ``<SEG>`` (n_i, D); the neck projects them to SAM's prompt space
    (n_i, C); the frozen SAM encoder embeds the SAM image (B, C, h, w); the head
    decodes one low-res mask per ``<SEG>`` and upsamples it to the original size.

    Args:
        backbone: Config of the VLM (e.g. ``LlavaBackbone``).
        sam_encoder: Config of the SAM image encoder (``SAMImageEncoder``).
        neck: Config of the ``<SEG>`` projector; ``in_channels`` defaults to the
            backbone hidden size.
        head: Config of the mask head (``SAMHead``).
        loss_ce: Config of the LM loss (weight 1.0 in LISA).
        loss_bce: Config of the mask BCE loss (weight 2.0 in LISA).
        loss_dice: Config of the Dice loss (weight 0.5 in LISA).
        predict_mode: ``'teacher_forced'`` (LISA's validation: masks from the given
            answer) or ``'generate'`` (greedy-decode the answer from the prompt; masks
            from the generated ``<SEG>`` tokens).
        generation_cfg: Keyword arguments of Hugging Face ``generate`` in generate mode.
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
        loss_bce: dict = dict(type='MaskBCELoss', loss_weight=2.0),
        loss_dice: dict = dict(type='DiceLoss', loss_weight=0.5),
        predict_mode: str = 'teacher_forced',
        generation_cfg: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        _require_parts(backbone=backbone, sam_encoder=sam_encoder, neck=neck, head=head)
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
        self.sam_encoder = MODELS.build(sam_encoder)
        neck = dict(neck)
        neck.setdefault('in_channels', self.backbone.hidden_size)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        self.loss_ce = MODELS.build(loss_ce)
        self.loss_bce = MODELS.build(loss_bce)
        self.loss_dice = MODELS.build(loss_dice)
        self._check_dims()
        self._log_trainable()

    def init_weights(self) -> None:
        """Initialize the parts that mmengine owns; the backbone's weights come from
        Hugging Face (a checkpoint or HF's own random init), and its quantized
        (integer) parameters cannot go through mmengine's float statistics."""
        for part in (self.sam_encoder, self.neck, self.head):
            if hasattr(part, 'init_weights'):
                part.init_weights()

    def _check_dims(self) -> None:
        """Fail early, naming the config keys, when components do not fit together."""
        checks = [
            (
                'model.neck.in_channels',
                getattr(self.neck, 'in_channels', None),
                'the backbone hidden size',
                self.backbone.hidden_size,
            ),
            (
                'model.neck.out_channels',
                getattr(self.neck, 'out_channels', None),
                'model.head.embed_dim',
                self.head.embed_dim,
            ),
            (
                'model.sam_encoder output channels',
                self.sam_encoder.out_channels,
                'model.head.embed_dim',
                self.head.embed_dim,
            ),
            (
                'model.sam_encoder img_size / patch_size',
                self.sam_encoder.embedding_size,
                'model.head.image_embedding_size',
                self.head.image_embedding_size,
            ),
            (
                'model.sam_encoder.img_size',
                self.sam_encoder.img_size,
                'model.head.input_image_size',
                self.head.input_image_size,
            ),
        ]
        for key, got, other, expected in checks:
            if got is not None and got != expected:
                raise ValueError(
                    f'{key} is {got} but must equal {other} ({expected}); '
                    f'set {key.split(" ")[0]} to {expected}.'
                )

    def _log_trainable(self) -> None:
        lines = []
        for name in ('backbone', 'sam_encoder', 'neck', 'head'):
            train, total = _parameter_counts(getattr(self, name))
            lines.append(f'{name}: {train:,} / {total:,}')
        train, total = _parameter_counts(self)
        print_log(
            f'LISA trainable / total parameters: {train:,} / {total:,} ({"; ".join(lines)})',
            logger='current',
        )

    # ----------------------------------------------------------------- core
    def forward(
        self, inputs: dict, data_samples: Optional[SampleList] = None, mode: str = 'tensor'
    ):
        """mmengine entry point: ``mode`` is ``'loss'``, ``'predict'`` or ``'tensor'``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise ValueError(f'Invalid mode {mode!r}; expected "loss", "predict" or "tensor".')

    def _run(self, inputs: dict, data_samples: SampleList) -> tuple[dict, list[torch.Tensor]]:
        """SAM + backbone + neck: LM outputs and (n_i, H_i, W_i) mask logits per sample.

        LISA's layout: the B samples (images) hold N >= B one-turn sequences
        (``inputs['seq_to_sample']``, see ``grouping.py``). The frozen SAM encoder runs
        once per image, first (as in LISA: its large transient activations are freed
        before the LLM's are allocated); the backbone runs on the N sequences, each with
        its image's CLIP pixels; the ``<SEG>`` states of a sample's sequences are decoded
        together, in sequence order, over its image's embedding.
        """
        num_samples = inputs['sam_images'].shape[0]
        seq_to_sample = sequence_samples(inputs, num_samples)  # (N,)
        seq_counts = (inputs['input_ids'] == self.backbone.seg_token_id).sum(dim=1)  # (N,)
        counts = sample_counts(seq_counts, seq_to_sample, num_samples)  # B x n_i
        image_embeddings = self._embed_images(inputs['sam_images'], counts)  # (B, C, h, w)
        lm = self.backbone(
            inputs['input_ids'],
            inputs['attention_mask'],
            self._clip_per_sequence(inputs['clip_images'], seq_to_sample),  # (N, 3, s, s)
            inputs.get('labels'),
        )
        lm['seq_to_sample'] = seq_to_sample
        seg_embeds = group_rows(lm['seg_embeds'], seq_to_sample, num_samples)  # B x (n_i, D)
        assert [len(e) for e in seg_embeds] == counts, 'one hidden state per <SEG>'
        prompts = self._project(torch.cat(seg_embeds)).split(counts)  # B x (n_i, C)
        low_res, lm['iou_scores'] = self.head(image_embeddings, prompts, return_iou=True)
        # low_res: B x (n_i, 4h, 4w) logits; iou_scores: B x (n_i,) SAM-predicted IoUs
        masks = [
            self.head.postprocess(m, ds.metainfo['sam_resize'], ds.metainfo['ori_shape'])
            for m, ds in zip(low_res, data_samples)
        ]
        return lm, masks

    @staticmethod
    def _clip_per_sequence(clip_images: torch.Tensor, seq_to_sample: torch.Tensor) -> torch.Tensor:
        """(B, 3, s, s) -> (N, 3, s, s): each sequence gets its image (LISA duplicates it)."""
        return clip_images if is_one_per_sample(seq_to_sample) else clip_images[seq_to_sample]

    def _embed_images(self, images: torch.Tensor, counts: Sequence[int]) -> torch.Tensor:
        """SAM embeddings (B, C, h, w) of the images whose sample has a ``<SEG>``.

        Text-only samples (no ``<SEG>``, e.g. VQA) skip the SAM encoder: their rows
        are zeros, and the head decodes no mask for them, so they add only the LM loss.
        """
        keep = [i for i, n in enumerate(counts) if n > 0]
        if len(keep) == len(counts):
            return self.sam_encoder(images)
        if keep:
            embeds = self.sam_encoder(images[keep])  # (B', C, h, w)
            out = embeds.new_zeros((len(counts), *embeds.shape[1:]))
            out[keep] = embeds
            return out
        side = self.sam_encoder.embedding_size
        return images.new_zeros((len(counts), self.sam_encoder.out_channels, side, side))

    @staticmethod
    def _targets(masks: list[torch.Tensor], data_samples: SampleList) -> list[torch.Tensor]:
        """0/1 float targets (ignore pixels count as background, as in LISA training)."""
        targets = []
        for m, ds in zip(masks, data_samples):
            if 'gt_masks' not in ds:
                raise ValueError(
                    f'Sample {ds.metainfo.get("img_path") or ds.metainfo.get("sample_idx")} '
                    'has no gt_masks; training needs them, (0, H, W) for text-only samples: '
                    'add a mask loader (e.g. LoadMaskAnnotations) to the pipeline.'
                )
            gt = ds.gt_masks
            if len(gt) != len(m):
                raise ValueError(
                    f'Sample {ds.metainfo.get("img_path") or ds.metainfo.get("sample_idx")}: '
                    f'the answer has {len(m)} <SEG> tokens but there are {len(gt)} target '
                    'masks; write exactly one <SEG> per mask.'
                )
            targets.append((gt == 1).to(m.dtype))
        return targets

    @staticmethod
    @torch.no_grad()
    def _iou_stats(masks: list[torch.Tensor], data_samples: SampleList) -> dict[str, float]:
        inter, union = [], []
        for m, ds in zip(masks, data_samples):
            i, u = intersection_union(m > MASK_LOGIT_THRESHOLD, ds.gt_masks)
            inter += i.tolist()
            union += u.tolist()
        return summarize_iou(inter, union)

    def loss(self, inputs: dict, data_samples: SampleList) -> dict[str, torch.Tensor]:
        """Training losses (``loss_ce``, ``loss_bce``, ``loss_dice``) and batch gIoU/cIoU.

        Samples without ``<SEG>`` (text-only, e.g. VQA) add only to ``loss_ce``; a batch
        of only such samples has ``loss_bce = loss_dice = 0`` and no gIoU/cIoU.
        """
        lm, masks = self._run(inputs, data_samples)
        targets = self._targets(masks, data_samples)
        losses = dict(
            loss_ce=self._loss_ce(lm),
            loss_bce=self.loss_bce(masks, targets),
            loss_dice=self.loss_dice(masks, targets),
        )
        device = losses['loss_ce'].device
        if any(len(m) for m in masks):  # text-only batches: mask losses 0, no IoU
            stats = self._iou_stats(masks, data_samples)
            losses.update({k: torch.tensor(v, device=device) for k, v in stats.items()})
        return losses

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

        Teacher-forced (LISA's validation): masks from the given answer; fills
        ``pred_masks`` (n_i, H, W) bool and ``pred_iou_scores`` (n_i,) (SAM's predicted
        IoU) on CPU and, where targets exist, per-sample ``losses``. A sample of several
        sequences gets the mean of its sequences' CE (each a token mean); the training
        ``loss_ce`` is the token mean over all sequences, as LISA's. Generate: see
        :meth:`predict_generate`.
        """
        if self.predict_mode == 'generate':
            return self.predict_generate(inputs, data_samples)
        lm, masks = self._run(inputs, data_samples)
        seq_ce = self._loss_ce(lm, per_sample=True)  # (N,)
        ce = sample_mean(seq_ce, lm['seq_to_sample'], len(masks))  # (B,)
        for i, (m, ds) in enumerate(zip(masks, data_samples)):
            ds.pred_masks = (m > MASK_LOGIT_THRESHOLD).cpu()
            ds.pred_iou_scores = lm['iou_scores'][i].detach().float().cpu()
            if 'gt_masks' in ds:
                target = self._targets([m], [ds])
                ds.losses = dict(
                    loss_ce=float(ce[i]),
                    loss_bce=float(self.loss_bce([m], target)),
                    loss_dice=float(self.loss_dice([m], target)),
                )
                ds.gt_masks = ds.gt_masks.cpu()
        return data_samples

    @torch.no_grad()
    def predict_generate(
        self, inputs: dict, data_samples: SampleList, generation_cfg: Optional[dict] = None
    ) -> SampleList:
        """Generate each sequence's answer from its prompt; one mask per generated ``<SEG>``.

        The prompt is the sequence up to its first supervised label (the answer is cut
        off). A sample's masks are those of its sequences, concatenated in order, and
        its ``pred_text`` their answers joined by newlines. Fills ``pred_text``,
        ``num_generated_seg``, ``pred_masks`` and ``pred_iou_scores``; with targets,
        missing masks count as empty predictions and extra ones are dropped (per
        sequence when the given answers hold one ``<SEG>`` per target, else per
        sample), so the metric compares one prediction per target. ``generation_cfg``
        updates ``self.generation_cfg`` for this call (e.g. ``max_new_tokens``).
        """
        generation_cfg = dict(self.generation_cfg, **(generation_cfg or {}))
        num_samples = inputs['sam_images'].shape[0]
        seq_to_sample = sequence_samples(inputs, num_samples).tolist()  # N
        image_embeddings = self.sam_encoder(inputs['sam_images'])  # (B, C, h, w)
        given = (inputs['input_ids'] == self.backbone.seg_token_id).sum(dim=1).tolist()  # N
        outputs = [[] for _ in range(num_samples)]  # B x [(text, masks, ious) per sequence]
        for n, i in enumerate(seq_to_sample):
            outputs[i].append(
                self._generate_one(
                    self._prompt(inputs, n),
                    inputs['clip_images'][i : i + 1],
                    image_embeddings[i : i + 1],
                    data_samples[i].metainfo,
                    generation_cfg,
                )
            )
        for i, ds in enumerate(data_samples):
            texts, masks, ious = (list(x) for x in zip(*outputs[i]))
            ds.pred_text = '\n'.join(texts)
            ds.num_generated_seg = sum(len(m) for m in masks)
            if 'gt_masks' in ds:  # one prediction per target (IoU 0 for padding)
                wanted = [given[n] for n, j in enumerate(seq_to_sample) if j == i]
                masks = [match_to_targets(masks, wanted, len(ds.gt_masks))]
                ious = [match_to_targets(ious, wanted, len(ds.gt_masks))]
                ds.gt_masks = ds.gt_masks.cpu()
            ds.pred_masks, ds.pred_iou_scores = torch.cat(masks), torch.cat(ious)
        return data_samples

    def _prompt(self, inputs: dict, n: int) -> torch.Tensor:
        """(1, L) ids of sequence ``n`` up to its first supervised label."""
        supervised = torch.nonzero(inputs['labels'][n] != self.loss_ce.ignore_index)
        start = int(supervised[0]) if len(supervised) else inputs['labels'].shape[1]
        return inputs['input_ids'][n : n + 1, :start]

    def _generate_one(
        self,
        prompt: torch.Tensor,
        pixels: torch.Tensor,
        image_embedding: torch.Tensor,
        metainfo: dict,
        generation_cfg: dict,
    ) -> tuple[str, torch.Tensor, torch.Tensor]:
        """Answer one prompt (1, L) about CLIP pixels (1, 3, s, s) and decode its
        ``<SEG>`` over the SAM embedding (1, C, h, w): the text, (k, H, W) bool masks
        and (k,) predicted IoUs, on CPU."""
        seq = self.backbone.generate(
            prompt, torch.ones_like(prompt), pixels, **generation_cfg
        )  # (1, L' + k)
        lm = self.backbone.forward_expanded(seq, torch.ones_like(seq), pixels)
        prompts = self._project(lm['seg_embeds'][0])  # (k, C)
        low_res, ious = self.head(image_embedding, [prompts], return_iou=True)
        masks = self.head.postprocess(low_res[0], metainfo['sam_resize'], metainfo['ori_shape'])
        text = self.backbone.tokenizer.decode(
            seq[0, self._expanded_length(prompt) :], skip_special_tokens=True
        )
        return text, (masks > MASK_LOGIT_THRESHOLD).cpu(), ious[0].float().cpu()

    def _project(self, seg_embeds: torch.Tensor) -> torch.Tensor:
        """Neck on (N, D) ``<SEG>`` states, cast to the neck's dtype (a bf16 / fp16 or
        quantized LLM may feed a float32 neck) -> (N, C)."""
        dtype = next(self.neck.parameters()).dtype
        return self.neck(seg_embeds.to(dtype))

    def _expanded_length(self, prompt: torch.Tensor) -> int:
        """Length of ``prompt`` (1, L) after ``<image>`` expansion."""
        return prompt.shape[1] - 1 + self.backbone.num_expanded_tokens

    def _forward(self, inputs: dict, data_samples: SampleList) -> list[torch.Tensor]:
        """Mask logits per sample, (n_i, H_i, W_i)."""
        return self._run(inputs, data_samples)[1]
