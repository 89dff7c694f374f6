# Evaluate the released LISA-7B-v1 on gRefCOCO (unc) val in LISA's merged mode,
# teacher-forced: "What is {sentence} in this image? Please output segmentation mask." ->
# "[SEG].", one mask per expression compared with the union of its targets (all zero for
# a no-target expression). GRefCOCOMetric: gIoU / cIoU (a no-target expression scores 1
# when the predicted mask is empty, else 0), N-acc and T-acc (LISA has no rejection
# token: an empty mask is its "no such object").
#   python tools/test.py THIS_CONFIG data/lisa/LISA-7B-v1/lisakit_checkpoint.pth
#   testA / testB:  --cfg-options test_dataloader.dataset.split=testA
#   data folder:    --cfg-options test_dataloader.dataset.data_root=/path/refer_seg
# The converted folder comes from tools/model_converters/lisa_to_lisakit.py (see
# docs/model_zoo.md).
_base_ = [
    '../_base_/models/lisa_llava-v1-7b_sam-vit-h.py',
    '../_base_/datasets/grefcoco.py',
    '../_base_/runtimes/eval_only.py',
]
train_dataloader = None  # evaluation only
