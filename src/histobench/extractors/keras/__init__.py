"""Keras/TensorFlow extractors and the Keras → timm weight converter.

Importing this package imports no TensorFlow: the extractors import it when they are built
(``runtime.tensorflow``), and the converter reads Keras HDF5 files with h5py alone.
"""
