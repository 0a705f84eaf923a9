"""TensorRT engines: the module and its capabilities (:mod:`.trt_api`), GPU facts (:mod:`.gpu`), the
builder (:mod:`.builder`), build orchestration over the artifact cache (:mod:`.build`) and the runner
(:mod:`.runtime`). Names, manifests and the cache itself live in :mod:`arcface_trt.artifacts`; how a
precision is made is the precision plan's (:mod:`arcface_trt.precision.plan`)."""
