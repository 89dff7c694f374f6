"""Named constants shared across lisakit (defined once, imported everywhere)."""

#: Label value of pixels excluded from evaluation (ReasonSeg 'ignore' regions).
IGNORE_INDEX = 255
#: Label value of tokens excluded from the language-model loss.
LM_IGNORE_INDEX = -100
#: The token whose preceding hidden state is turned into a SAM prompt.
SEG_TOKEN = '<SEG>'
#: The image placeholder token; the backbone expands it to one token per visual feature.
IMAGE_TOKEN = '<image>'
#: The rejection token ("no such object", GSVA's ``[REJ]``); added only when configured.
REJ_TOKEN = '[REJ]'

#: SAM pixel statistics (RGB, 0-255 scale).
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
#: CLIP (OpenAI) pixel statistics (RGB, 0-1 scale).
CLIP_PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)

#: Binarization threshold on mask logits (sigmoid > 0.5).
MASK_LOGIT_THRESHOLD = 0.0
