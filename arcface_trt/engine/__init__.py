"""TensorRT engines: key and manifest, local cache, builder, runtime."""
