"""Built engines as artifacts: their names (:mod:`.key`), their manifests (:mod:`.manifest`) and the one
local cache that holds TensorRT plans and CPU engines alike (:mod:`.cache`)."""
