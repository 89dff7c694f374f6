# Evaluate the released LISA-7B-v1 on ReasonSeg as LISA validates: teacher-forced answer
# "[SEG].", LISA's fixed prompts, gIoU / cIoU overall and per short / long query.
# 1. Convert (once): python tools/model_converters/lisa_to_lisakit.py LISA-7B-v1 \
#        data/lisa/LISA-7B-v1 --vision-tower clip-vit-large-patch14
# 2. Evaluate val: python tools/test.py THIS_CONFIG data/lisa/LISA-7B-v1/lisakit_checkpoint.pth
#    test split:  ... --cfg-options test_dataloader.dataset.split=test
#    other paths: the converted folder also holds lisakit_config.py (this config with its
#    absolute paths); or override model.backbone.pretrained (the llava/ folder, tokenizer
#    included), model.sam_encoder.checkpoint (the SAM head's weights too) and
#    test_dataloader.dataset.data_root with --cfg-options.
# Paper (LISA Table 1, not measured here): see docs/model_zoo.md. LISA's README warns that the
# v1 models were trained on train+val, so val numbers are not held-out numbers.
_base_ = [
    '../_base_/models/lisa_llava-v1-7b_sam-vit-h.py',
    '../_base_/datasets/reasonseg.py',
    '../_base_/runtimes/eval_only.py',
]
train_dataloader = None  # evaluation only
