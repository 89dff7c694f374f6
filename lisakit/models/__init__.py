"""Models: segmentors, backbones, processors, necks, heads, losses, data preprocessors."""

from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .processors import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
