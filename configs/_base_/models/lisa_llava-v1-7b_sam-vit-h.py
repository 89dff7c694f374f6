# LISA-7B-v1 as released (lisa_llava-llama2-13b_sam-vit-h.py inherits it for the 13B one):
# LLaVA-v1 layout (CLIP ViT-L/14-224, penultimate layer, patch tokens; one linear projector;
# <im_start>/<im_end> around the image; LISA's '[SEG]' token) + SAM ViT-H. The weights come
# from a folder written by
#   python tools/model_converters/lisa_to_lisakit.py LISA_DIR data/lisa/LISA-7B-v1 \
#       --vision-tower CLIP_DIR
# which holds llava/ (LLaMA + projector + CLIP, and LISA's tokenizer with lisakit's added
# tokens) and sam.pth (SAM with LISA's trained mask decoder); the neck (text_hidden_fcs) is in
# its lisakit_checkpoint.pth.
# bf16 as LISA's chat.py; override with --cfg-options model.backbone.torch_dtype=float32 etc.
lisa_dir = 'data/lisa/LISA-7B-v1'
model = dict(
    type='LISA',
    data_preprocessor=dict(type='LISADataPreprocessor'),
    backbone=dict(
        type='LlavaBackbone',
        pretrained=lisa_dir + '/llava',
        # LISA's text conventions: the llava_v1 template, 512 tokens once the 256 image
        # features are expanded, one one-turn sequence per query (tokenizer, CLIP 224 px and
        # feature count from llava/)
        processor=dict(template='llava_v1', max_length=512, layout='per_query'),
        seg_token='[SEG]',
        projector_type='linear',
        use_im_start_end=True,
        vision_feature_layer=-2,
        vision_feature_select_strategy='default',
        torch_dtype='bfloat16',
        trainable=dict(language_model='frozen'),
        supervised_logits_only=True,  # LM-head logits only where the loss reads them
        # 4-bit NF4: --cfg-options model.backbone.quantization.bits=4
        #            model.backbone.prepare_kbit=False
    ),
    sam_encoder=dict(
        type='SAMImageEncoder',
        arch='vit_h',
        checkpoint=lisa_dir + '/sam.pth',
        torch_dtype='bfloat16',
    ),
    neck=dict(type='SegProjector', out_channels=256),
    head=dict(
        type='SAMHead',  # its weights: sam_encoder.checkpoint's (one SAM path)
        # the head owns the mask losses: LISA's 2.0 x BCE + 0.5 x Dice
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
    predict_mode='teacher_forced',
    loss_ce=dict(type='LMCrossEntropyLoss', loss_weight=1.0),
)
