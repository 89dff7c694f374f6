# Evaluate the released LISA-7B-v1 on refCOCO (unc) val, teacher-forced as LISA validates:
# "What is {sentence} in this image? Please output segmentation mask." -> "[SEG].", one mask
# per referring sentence; cIoU is the paper's refCOCO metric (gIoU is reported too).
#   python tools/test.py THIS_CONFIG data/lisa/LISA-7B-v1/lisakit_checkpoint.pth
#   testA / testB:  --cfg-options test_dataloader.dataset.split=testA
#   data folder:    --cfg-options test_dataloader.dataset.data_root=/path/refer_seg
# The converted folder comes from tools/model_converters/lisa_to_lisakit.py (see
# lisa_llava-v1-7b_sam-vit-h_eval_reasonseg.py and docs/model_zoo.md).
_base_ = [
    '../_base_/models/lisa_llava-v1-7b_sam-vit-h.py',
    '../_base_/datasets/refcoco.py',
    '../_base_/runtimes/eval_only.py',
]
train_dataloader = None  # evaluation only
