# The tiny LISA of lisa_tiny.py with a SAM 2 mask head instead of SAM's: a random 4-stage
# Hiera, frozen (64 px, patch stride 2 -> FPN maps of 32, 16 and 8 px, 64 channels: the
# 8 x 8 embedding plays SAM's 64 x 64; with SAM 2's stride 4 it was 4 x 4 and learned half as
# fast), and a 64-d SAM 2 prompt encoder + mask decoder fed the two high-resolution maps.
_base_ = ['./lisa_tiny.py']
sam_input_size = 64
prompt_dim = 64
sam2_config = dict(
    vision_config=dict(
        backbone_config=dict(
            model_type='sam2_hiera_det_model',
            hidden_size=16,
            num_attention_heads=1,
            image_size=[sam_input_size, sam_input_size],
            patch_stride=[2, 2],
            blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128],
            num_attention_heads_per_stage=[1, 1, 2, 2],
            window_size_per_stage=[4, 4, 4, 2],
            global_attention_blocks=[3],
            window_positional_embedding_background_size=[4, 4],
        ),
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[
            [sam_input_size // 2] * 2,
            [sam_input_size // 4] * 2,
            [sam_input_size // 8] * 2,
        ],
        fpn_hidden_size=prompt_dim,
    ),
    prompt_encoder_config=dict(
        hidden_size=prompt_dim, image_size=sam_input_size, patch_size=8, mask_input_channels=4
    ),
    mask_decoder_config=dict(
        hidden_size=prompt_dim, mlp_dim=256, num_attention_heads=2, iou_head_hidden_dim=64
    ),
)
model = dict(
    sam_encoder=dict(_delete_=True, type='SAM2ImageEncoder', sam2_config=sam2_config),
    head=dict(
        _delete_=True,
        type='SAM2Head',
        sam2_config=sam2_config,
        loss_decode=[
            dict(type='MaskBCELoss', loss_weight=2.0),
            dict(type='DiceLoss', loss_weight=0.5),
        ],
    ),
)
