"""The torch backend: the siamese network as a torch module, its pooling and CPU kernels.

Importing this package does not import torch; its modules do.
"""
