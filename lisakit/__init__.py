"""lisakit: an OpenMMLab-style toolkit for LISA-style reasoning segmentation."""

from .version import __version__

__all__ = ['__version__']
