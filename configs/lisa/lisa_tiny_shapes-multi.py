# Several objects and no object on the coloured shapes: "Segment all the red shapes."
# names every red shape (1-3 targets), and the same question for a colour absent from the
# image names none. LISA's merged mode as LISA trains gRefCOCO: one "<SEG>." answer whose
# mask is the union of the targets, and for a no-target question the same answer with an
# all-zero mask (reject_answers=None), so "no such object" is an empty mask. (A rejection
# *text* without <SEG>, the datasets' default, did not learn on this tiny random model in
# the budget: the CE of the decision token stayed at chance; configs/lisa/README.md.)
# Validation generates the answer (predict_mode='generate'); GRefCOCOMetric scores gIoU /
# cIoU (a no-target sample scores 1 when nothing is predicted), N-acc, T-acc and
# multi/gIoU (samples with >= 2 targets).
# `python tools/train.py configs/lisa/lisa_tiny_shapes-multi.py` (CPU; curve in
# configs/lisa/README.md).
_base_ = ['./lisa_tiny_shapes.py']

# the words of the multi-target questions and the rejection answer
# (lisakit.datasets.shapes_reasonseg.multi_target_corpus(); a test checks they are here)
extra_words = [
    'Segment all the red green blue yellow purple shapes every circle triangle square',
    'pentagon hexagon . Sure, they are and Sorry, I cannot find it in the image .',
    'There is no such object',
]
tokenizer = dict(type='WordTokenizer', extra_words=extra_words)
# the tiny random CLIP and projector train too (tried for text rejection, kept as measured)
model = dict(
    backbone=dict(
        processor=dict(tokenizer=tokenizer), trainable=dict(vision_tower=True, projector=True)
    ),
    predict_mode='generate',
    generation_cfg=dict(max_new_tokens=12),
)

query_weights = dict(_delete_=True, all_color=1.0, absent_color=1.0)
# None: LISA's form (a <SEG> answer and an all-zero mask); a list of texts: rejection answers
reject_answers = None
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SAMPreprocess', img_size={{_base_.sam_input_size}}),  # the model's SAM size
    dict(type='PackLISAInputs'),
]
train_dataloader = dict(
    dataset=dict(
        num_samples=3000,
        query_weights=query_weights,
        target_mode='merged',
        reject_answers=reject_answers,
        pipeline=pipeline,
    )
)
val_dataloader = dict(
    dataset=dict(
        num_samples=200, query_weights=query_weights, target_mode='merged', pipeline=pipeline
    )
)
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='GRefCOCOMetric', group_by='query_type')
test_evaluator = val_evaluator

max_epochs = 6
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
default_hooks = dict(checkpoint=dict(save_best='gIoU'))
custom_hooks = [
    dict(type='TrainingHistoryHook'),
    dict(type='EarlyStoppingHook', monitor='gIoU', rule='greater', patience=5, min_delta=0.001),
]
