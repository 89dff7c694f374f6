from .lisa import LISA

__all__ = ['LISA']
