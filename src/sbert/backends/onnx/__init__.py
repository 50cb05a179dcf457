"""The ONNX Runtime backend, the export that feeds it, graph rewrites and int8 quantization.

Importing this package imports neither onnxruntime nor torch; its modules do.
"""
