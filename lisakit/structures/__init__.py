"""Data structures."""

from .reasonseg_data_sample import ReasonSegDataSample

__all__ = ['ReasonSegDataSample']
