"""The pieces of ``embed --ray`` that need no running Ray: actor sizing, error wording, the driver's ordering."""

from __future__ import annotations

import numpy as np
import pytest

from arcface_trt.embed.ray_cluster import Connection, _connect_error, actor_range, plan_actors
from arcface_trt.embed.ray_job import NOT_FOUND, _in_order
from arcface_trt.errors import BackendUnavailableError, InputError, RemoteError


@pytest.mark.parametrize(
    ("nodes", "device", "actors", "threads", "expected"),
    [
        # one 64-core CPU node: 8 threads an actor, 7 actors (an eighth of the CPUs left for decoding)
        ([(64, 0)], "auto", None, None, (7, 7, 8, 0)),
        # this machine: 2 CPUs, one single-thread actor and one CPU for decoding
        ([(2, 0)], "auto", None, None, (1, 1, 1, 0)),
        # two 16-core nodes: 4 threads an actor; 7 fit beside the decode CPUs
        ([(16, 0), (16, 0)], "auto", None, None, (7, 7, 4, 0)),
        # GPUs: one actor per GPU, one CPU each, unless the device says cpu
        ([(32, 4), (32, 4)], "auto", None, None, (8, 8, 1, 1)),
        ([(32, 4)], "cpu", None, None, (3, 3, 8, 0)),
        # what the user asks for
        ([(64, 0)], "auto", (2, 10), 4, (2, 10, 4, 0)),
        ([(8, 2)], "cuda", (1, 6), 2, (1, 6, 2, 1)),
    ],
)
def test_actor_plan(nodes, device, actors, threads, expected) -> None:
    plan = plan_actors([(float(c), float(g)) for c, g in nodes], device, actors, threads)
    assert (plan.min_actors, plan.max_actors, plan.threads, plan.gpus) == expected


def test_actor_plan_refuses_what_could_never_run() -> None:
    with pytest.raises(InputError, match="largest node of the cluster has 8 CPUs"):
        plan_actors([(8.0, 0.0), (4.0, 0.0)], "auto", None, 12)
    assert plan_actors([(8.0, 0.0), (4.0, 0.0)], "auto", None, 8).threads == 8
    with pytest.raises(InputError, match="reserve all 2 CPUs of the cluster, leaving none to read and decode"):
        plan_actors([(2.0, 0.0)], "auto", (2, 2), 1)
    with pytest.raises(InputError, match="reserve all 1 CPUs"):
        plan_actors([(1.0, 0.0)], "auto", None, None)
    assert plan_actors([(4.0, 4.0)], "auto", None, None).min_actors == 3  # one GPU waits: a CPU decodes
    assert plan_actors([(3.0, 0.0)], "auto", (2, 4), 1).min_actors == 2  # one CPU left to decode


def test_plan_options_and_description() -> None:
    plan = plan_actors([(64.0, 0.0)], "auto", (2, 4), 3)
    assert plan.describe() == "2-4 CPU actors x 3 threads"
    assert plan_actors([(2.0, 0.0)], "auto", None, None).describe() == "1 CPU actor x 1 thread"
    assert plan_actors([(8.0, 2.0)], "auto", None, None).describe() == "2 GPU actors x 1 thread"


@pytest.mark.parametrize(("value", "expected"), [("3", (3, 3)), ("1, 8", (1, 8)), (2, (2, 2)), ((1, 4), (1, 4))])
def test_actor_range(value, expected) -> None:
    assert actor_range(value) == expected
    assert actor_range(None) is None


@pytest.mark.parametrize("value", ["0", "4,2", "1,2,3", "many", "", (0, 1), -1])
def test_actor_range_refuses(value) -> None:
    with pytest.raises(InputError, match="--actors must be N or MIN,MAX"):
        actor_range(value)


def _connection_failure(text: str) -> ConnectionError:
    """What ray.init raises when it gives up: a ConnectionError caused by a RuntimeError holding the last error."""
    try:
        try:
            raise RuntimeError(f"Failed to connect to GCS. Last connection error: {text}")
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379") from inner
    except ConnectionError as outer:
        return outer


def test_connect_errors_name_token_auth(monkeypatch) -> None:
    refused = _connection_failure("ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: missing")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert _connect_error("10.0.0.5:6379", refused) == (
        "cannot connect to the Ray cluster at 10.0.0.5:6379: the cluster uses token auth: "
        "set RAY_AUTH_MODE=token or use --ray-address auto"
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert "refused this machine's token" in _connect_error("10.0.0.5:6379", refused)
    down = _connection_failure("TimedOut: Timed out while waiting for GCS to become available.")
    assert _connect_error("10.0.0.5:6379", down) == (
        "cannot connect to the Ray cluster at 10.0.0.5:6379: Failed to connect to Ray cluster at 10.0.0.5:6379"
    )


def _batch(keys: list[str], errors: dict[str, str] | None = None, dim: int = 3) -> dict[str, np.ndarray]:
    errors = errors or {}
    return {
        "path": np.array(keys, dtype=object),
        "embedding": np.ones((len(keys), dim), np.float32),
        "error": np.array([errors.get(k, "") for k in keys], dtype=object),
        "backend": np.array(["onnxruntime"] * len(keys), dtype=object),
        "precision": np.array(["fp32"] * len(keys), dtype=object),
    }


def test_the_driver_accounts_for_every_key_exactly_once() -> None:
    todo = ["a", "b", "c", "d", "e", "f"]
    batches = [
        _batch(["a", "c"]),  # b: not found by Ray's reader
        _batch(["c", "d/x.png"]),  # c again (never twice), a file of a listed folder (never asked for)
        _batch(["d", "e"], {"e": "not a decodable image"}),
    ]  # f: never came
    out = list(_in_order(iter(batches), todo, 3))
    embedded = [k for b in out for k in b.keys]
    failures = [f for b in out for f in b.failures]
    assert embedded == ["a", "c", "d"]
    assert failures == [("b", NOT_FOUND), ("e", "not a decodable image"), ("f", NOT_FOUND)]
    assert all(b.embeddings.shape[1] == 3 for b in out)


def test_ray_failures_carry_the_cause() -> None:
    exceptions = pytest.importorskip("ray.exceptions")
    from arcface_trt.embed.ray_errors import ray_failure

    # an actor's __init__ raised: ActorDiedError holds a RayTaskError whose cause is the original
    init = exceptions.RayTaskError("__init__", "Traceback ...", InputError("Ray node 10.0.0.7 cannot read the model"))
    found = ray_failure(exceptions.ActorDiedError(init))
    assert isinstance(found, InputError) and str(found) == "Ray node 10.0.0.7 cannot read the model"
    # a Ray Data task: the original survives only as text in the remote traceback
    text = (
        "ray::MapBatches(read_npy_rows)() (pid=1, ip=10.0.0.7)\n  File 'x.py', line 3, in f\n"
        "arcface_trt.errors.InputError: not found: s3://b/crops.npy\n\n"
        "The above exception was the direct cause of the following exception:\n"
        "ray.exceptions.UserCodeException: UDF failed to process a data block."
    )
    task = exceptions.RayTaskError("read_npy_rows", text, exceptions.UserCodeException("UDF failed"))
    found = ray_failure(task)
    assert type(found) is InputError and str(found) == "not found: s3://b/crops.npy"
    # a process that crashed while starting, restarts exhausted: no Python cause at all
    found = ray_failure(exceptions.ActorDiedError())
    assert isinstance(found, BackendUnavailableError) and "could not be restarted" in str(found)
    # a local file missing on a worker node: the shared file system is named
    missing = exceptions.RayTaskError("read", "FileNotFoundError: /data/crops/a.png", exceptions.UserCodeException())
    found = ray_failure(missing, local_inputs=True)
    assert isinstance(found, InputError) and "shared file system" in str(found) and "/data/crops/a.png" in str(found)
    # anything else from a worker: one line, exit 1, the cause named
    other = exceptions.RayTaskError("f", "MemoryError: cannot allocate", exceptions.UserCodeException())
    found = ray_failure(other)
    assert isinstance(found, RemoteError) and found.exit_code == 1 and "MemoryError: cannot allocate" in str(found)
    # not a Ray error: left alone
    assert ray_failure(ValueError("a bug")) is None


def test_workers_get_the_drivers_s3_endpoint_and_their_threads(monkeypatch) -> None:
    from arcface_trt.backends.spec import BackendSpec
    from arcface_trt.embed.ray_job import spec_for_workers
    from arcface_trt.objectstore import ObjectStore

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    spec = BackendSpec.resolve("tensorrt", "cuda")
    shipped = spec_for_workers(spec, ObjectStore.from_section(spec.tensorrt.tensorrt), 3)
    section = shipped.tensorrt.tensorrt
    assert (section.engine_s3_endpoint_url, section.engine_s3_region, shipped.threads) == (
        "http://127.0.0.1:9000",
        "eu-west-3",
        3,
    )
    assert spec.tensorrt.tensorrt.engine_s3_endpoint_url is None  # the driver's own spec is left as it was


class _FakeRay:
    """``ray.is_initialized``, ``ray.init`` (recording its options) and ``ray.shutdown``, no Ray started."""

    def __init__(self, initialized: bool = False) -> None:
        self.initialized = initialized
        self.inits: list[dict] = []
        self.shutdowns = 0

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options) -> None:
        self.inits.append(options)

    def shutdown(self) -> None:
        self.shutdowns += 1


def _connect(monkeypatch, address=None, num_cpus=None, initialized=False):
    from arcface_trt.embed import ray_cluster

    fake = _FakeRay(initialized)
    monkeypatch.setattr(ray_cluster, "ray", fake)
    with ray_cluster.connected(address, num_cpus) as connection:
        pass
    return connection, fake


def test_started_joined_by_address_or_ray_address(monkeypatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("ARCFACE_TRT_CACHE_DIR", "/shared/cache")
    connection, fake = _connect(monkeypatch, num_cpus=3)
    assert connection == Connection("started")
    assert (fake.inits[0]["address"], fake.inits[0]["num_cpus"]) == ("local", 3)  # never a running cluster
    assert fake.inits[0]["runtime_env"] == {"env_vars": {"ARCFACE_TRT_CACHE_DIR": "/shared/cache"}}
    assert fake.shutdowns == 1

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # as `ray job submit` sets it
    connection, fake = _connect(monkeypatch)
    assert connection == Connection("joined", "10.0.0.5:6379") and fake.inits[0]["address"] == "10.0.0.5:6379"
    connection, _ = _connect(monkeypatch, address="auto")  # --ray-address wins
    assert connection == Connection("joined", "auto")
    with pytest.raises(InputError, match=r"the cluster at 10\.0\.0\.5:6379 has its own CPUs"):
        _connect(monkeypatch, num_cpus=2)

    connection, fake = _connect(monkeypatch, initialized=True)  # this process's Ray: used as it is, left running
    assert connection == Connection("joined", env_applied=False) and (fake.inits, fake.shutdowns) == ([], 0)
