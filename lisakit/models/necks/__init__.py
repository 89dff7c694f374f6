from .seg_projector import LinearProjector, SegProjector

__all__ = ['LinearProjector', 'SegProjector']
