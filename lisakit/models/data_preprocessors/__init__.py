from .lisa_data_preprocessor import LISADataPreprocessor

__all__ = ['LISADataPreprocessor']
