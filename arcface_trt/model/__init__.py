"""ONNX recognition models: the built-in generator and model inspection."""
