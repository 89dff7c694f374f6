# Several objects and no object with GSVA's rejection token: the multi / no-target shapes
# config (lisa_tiny_shapes-multi.py) where a no-target question is answered "[REJ]." (a
# dedicated token, added to the vocabulary like <SEG>, no mask) instead of LISA's
# empty-mask "<SEG>.". Validation generates the answer; a generated answer with [REJ] and
# no <SEG> is a rejection (pred_rejected, no mask), which GRefCOCOMetric's N-acc / T-acc
# read. Measured choices (configs/lisa/README.md, "[REJ]"): the answer restates the
# named colour first ("red [REJ]." / "red <SEG>."), the question comes before the image,
# CLIP sees 64 px (64 visual tokens), and 10 epochs: without the first three the
# [REJ] / <SEG> choice stayed at chance on this tiny random model, and in 6 epochs N-acc
# ended at 0.88.
# `python tools/train.py configs/lisa/lisa_tiny_shapes-multi-rej.py` (CPU).
_base_ = ['./lisa_tiny_shapes-multi.py']

clip_size = 64  # patch 8 -> 64 visual tokens
model = dict(
    backbone=dict(
        # the processor adds [REJ] to the vocabulary after <SEG> (the tiny LLM trains in
        # full, [REJ]'s rows with it; trainable.embeddings='seg_rows' trains both tokens');
        # the base's max_text_length=64 keeps the text room next to the 64 visual tokens
        processor=dict(rej_token='[REJ]'),
        llava_config=dict(vision_config=dict(image_size=clip_size)),
    ),
)

# "{named}": the colour the question names; "[REJ].": the rejection (GSVA)
answers = ['{named} <SEG>.']
reject_answers = ['{named} [REJ].']
long_questions = ['{sent} <image>\n Please output segmentation mask.']
train_dataloader = dict(
    dataset=dict(
        answers=answers,
        reject_answers=reject_answers,
        long_questions=long_questions,
    )
)
val_dataloader = dict(dataset=dict(answers=answers, long_questions=long_questions))
test_dataloader = val_dataloader

max_epochs = 10
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.01,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True,
    )
]
train_cfg = dict(max_epochs=max_epochs)
