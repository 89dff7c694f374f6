# A tiny LISA with random weights, for CPU demos and tests: a 2-layer LLaVA (CLIP
# 32 px / patch 8 -> 16 visual tokens, LLaMA hidden 128), a 2-block SAM encoder
# (64 px / patch 4 -> 16 x 16 embedding, 64 channels) and a 64-d SAM decoder.
# The tiny random LLM is trained in full (trainable.language_model='full', no LoRA): with its
# base frozen (as the 7B recipe freezes it and trains LoRA) the <SEG> state carried too
# little of the query to learn in minutes; see configs/lisa/README.md for the measurements.
sam_input_size = 64
prompt_dim = 64
model = dict(
    type='LISA',
    data_preprocessor=dict(type='LISADataPreprocessor'),
    backbone=dict(
        type='LlavaBackbone',
        # the backbone's text conventions (CLIP size and the 16 image features come from
        # llava_config): 64 text tokens (the image counted as one); the queries of a sample
        # stay turns of one sequence (the demo's model reads one sequence per image)
        processor=dict(
            tokenizer=dict(type='WordTokenizer'),
            template='plain',
            max_text_length=64,
            layout='multi_turn',
        ),
        llava_config=dict(
            vision_config=dict(
                model_type='clip_vision_model',
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                patch_size=8,
            ),
            text_config=dict(
                model_type='llama',
                hidden_size=128,
                intermediate_size=256,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=4,
                max_position_embeddings=256,
            ),
            vision_feature_layer=-2,
            vision_feature_select_strategy='default',
        ),
        # CLIP and the projector frozen, the whole tiny LLM (embeddings, LM head) trains
        trainable=dict(
            vision_tower=False, projector=False, language_model='full', embeddings='none'
        ),
        lora=None,
    ),
    sam_encoder=dict(
        type='SAMImageEncoder',
        arch=dict(
            embed_dim=64,
            depth=2,
            num_heads=2,
            global_attn_indexes=(1,),
            patch_size=4,
            window_size=8,
            out_chans=prompt_dim,
        ),
        img_size=sam_input_size,
        frozen=True,
    ),
    neck=dict(type='SegProjector', out_channels=prompt_dim),
    head=dict(
        type='SAMHead',
        embed_dim=prompt_dim,
        image_embedding_size=sam_input_size // 4,
        input_image_size=sam_input_size,
        mask_in_chans=4,
        decoder_depth=2,
        decoder_mlp_dim=256,
        decoder_num_heads=2,
        iou_head_hidden_dim=64,
        # the head owns the mask losses: LISA's 2.0 x BCE + 0.5 x Dice
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
    # LISA's chat writes up to 512 new tokens (the default); the tiny demo answers "<SEG>."
    # and its context is 256 positions, so generation stops at 32 (a random LLM never ends).
    generation_cfg=dict(max_new_tokens=32),
    loss_ce=dict(type='LMCrossEntropyLoss', loss_weight=1.0),
)
