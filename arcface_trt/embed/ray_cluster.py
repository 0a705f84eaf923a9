"""Ray for ``embed --ray``: starting or joining it, what workers get from the driver, and how many actors run.

- ``--ray`` starts a local instance for the run (stopped after it); ``--ray-address`` (or
  ``RAY_ADDRESS``, as ``ray job submit`` sets it) joins a running cluster; a Ray already
  initialised in the calling process is used as it is. :class:`Connection` says which.
- Workers get the driver's settings they need as ``runtime_env.env_vars`` (:data:`WORKER_ENV`,
  when set); never a credential: each node uses its own.
- :func:`plan_actors` sizes the actor pool from the cluster's nodes: one actor per GPU when the
  cluster has GPUs (and the device allows), else CPU actors of ``--threads-per-actor`` threads
  each, as many as fit while leaving CPUs for the decode tasks. ``--actors MIN,MAX`` makes the
  pool autoscale between the two.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from arcface_trt.errors import InputError, first_line, short_repr
from arcface_trt.lazy import lazy_import
from arcface_trt.paths import CACHE_ENV
from arcface_trt.redact import redact

ray = lazy_import("ray")
ray_data = lazy_import("ray.data")

#: Environment variables of the driver that its Ray workers get too (when set).
WORKER_ENV = (CACHE_ENV,)
#: Restarts of one actor before the run stops (a model that crashes its process on load would loop forever).
ACTOR_MAX_RESTARTS = 3
#: Most threads a CPU actor gets by default (ONNX Runtime scales poorly beyond this on one session).
MAX_DEFAULT_THREADS = 8
#: What Ray says when a token-authenticated cluster refuses a connection.
_AUTH_SIGNS = ("InvalidAuthToken", "AuthenticationError", "Unauthenticated")


@dataclass(frozen=True)
class Connection:
    """How this run reached Ray: ``started`` a local instance, or ``joined`` a running one (at ``address``).

    ``env_applied``: the job's ``runtime_env`` already carries :func:`worker_env` (False for a Ray this
    process had initialised before: then each operation of the run must carry it).
    """

    how: str
    address: str | None = None
    env_applied: bool = True


def worker_env() -> dict[str, str]:
    """The :data:`WORKER_ENV` variables set here, for ``runtime_env.env_vars``."""
    return {name: os.environ[name] for name in WORKER_ENV if os.environ.get(name)}


def _connect_error(address: str | None, exc: BaseException) -> str:
    """One line for a failed ``ray.init``: token auth named as such (Ray's own message does not say)."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 10:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    where = f"the Ray cluster at {address}" if address else "Ray"
    if any(sign in text for text in texts for sign in _AUTH_SIGNS):
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            return (
                f"cannot connect to {where}: the cluster uses token auth: "
                "set RAY_AUTH_MODE=token or use --ray-address auto"
            )
        return (
            f"cannot connect to {where}: the cluster uses token auth and refused this machine's token "
            "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): use the cluster's token"
        )
    return f"cannot connect to {where}: {redact(first_line(exc))}"


@contextlib.contextmanager
def connected(address: str | None, num_cpus: int | None) -> Iterator[Connection]:
    """Ray for one run: the process's own if initialised, else ``address`` or ``RAY_ADDRESS`` joined, else started.

    A local instance this starts (with ``num_cpus`` CPUs, default: all) is stopped afterwards; a
    joined cluster is only disconnected from.
    """
    if ray.is_initialized():
        if num_cpus:
            raise InputError("ray_num_cpus sizes a local instance, but Ray is already initialised in this process")
        yield Connection("joined", env_applied=False)
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target and num_cpus:
        raise InputError(f"ray_num_cpus sizes a local instance; the cluster at {target} has its own CPUs")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    options.update({"address": target} if target else {"address": "local", "num_cpus": num_cpus})
    if env := worker_env():
        # For the whole job: every task and actor of the run can then share the same worker processes.
        options["runtime_env"] = {"env_vars": env}
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:  # ray.init's errors: unreachable, refused, bad address
        raise InputError(_connect_error(target, exc)) from None
    try:
        yield Connection("joined", target) if target else Connection("started")
    finally:
        ray.shutdown()


def actor_range(value: int | tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``--actors``: ``N`` (a fixed pool) or ``MIN,MAX`` (autoscaling), as text, a number or a pair; None: default."""
    if value is None:
        return None
    parts = [p.strip() for p in str(value).split(",")] if isinstance(value, str) else [value]
    if isinstance(value, tuple):
        parts = list(value)
    try:
        values = [int(p) for p in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (1, 2) or min(values) < 1 or values[0] > values[-1]:
        raise InputError(f"--actors must be N or MIN,MAX with 1 <= MIN <= MAX, got {short_repr(value)}")
    return values[0], values[-1]


@dataclass(frozen=True)
class ActorPlan:
    """The actor pool: between ``min_actors`` and ``max_actors`` actors of ``threads`` CPUs (and ``gpus`` GPUs)."""

    min_actors: int
    max_actors: int
    threads: int
    gpus: int

    def describe(self) -> str:
        """``2 CPU actors x 4 threads``, ``1-8 GPU actors``."""
        count = str(self.min_actors) if self.min_actors == self.max_actors else f"{self.min_actors}-{self.max_actors}"
        kind = "GPU" if self.gpus else "CPU"
        actors = "actors" if self.max_actors > 1 else "actor"
        threads = "threads" if self.threads > 1 else "thread"
        return f"{count} {kind} {actors} x {self.threads} {threads}"

    def map_options(self) -> dict[str, Any]:
        """``map_batches`` options for the embedding actors."""
        options: dict[str, Any] = {
            "compute": ray_data.ActorPoolStrategy(min_size=self.min_actors, max_size=self.max_actors),
            "num_cpus": self.threads,
            "max_restarts": ACTOR_MAX_RESTARTS,
        }
        if self.gpus:
            options["num_gpus"] = self.gpus
        return options


def default_threads_per_actor(largest_node_cpus: float) -> int:
    """Threads of a CPU actor when not given: a quarter of the largest node's CPUs, 1 to :data:`MAX_DEFAULT_THREADS`."""
    return max(1, min(MAX_DEFAULT_THREADS, int(largest_node_cpus // 4)))


def plan_actors(
    nodes: list[tuple[float, float]], device: str, actors: tuple[int, int] | None, threads: int | None
) -> ActorPlan:
    """Size the pool from the alive nodes' ``(CPUs, GPUs)``; ``actors``/``threads`` as given on the command line.

    GPU actors (one GPU each, ``threads`` CPUs, default 1) when the cluster has GPUs and ``device``
    is not ``cpu``: by default one per GPU. Else CPU actors of ``threads`` threads (default:
    :func:`default_threads_per_actor`): by default as many as fit on the nodes, keeping an eighth
    of the CPUs (at least one) for reading and decoding.
    """
    cpus = [c for c, _ in nodes] or [1.0]
    largest = max(cpus)
    if threads is not None and threads < 1:
        raise InputError(f"--threads-per-actor must be at least 1, got {threads}")
    if threads is not None and threads > largest:
        raise InputError(
            f"--threads-per-actor {threads}: the largest node of the cluster has {largest:g} CPUs, "
            "so such an actor could never be placed"
        )
    gpus = int(sum(g for _, g in nodes))
    total = sum(cpus)
    on_gpus = gpus >= 1 and device != "cpu"
    per_actor = threads or (1 if on_gpus else default_threads_per_actor(largest))
    if actors is None:
        if on_gpus:  # one per GPU, as long as a CPU stays free for the decode tasks
            count = max(1, min(gpus, math.ceil(total - 1) // per_actor))
        else:
            fit = sum(int(c // per_actor) for c in cpus)
            count = max(1, min(fit, int((total - max(1, total // 8)) // per_actor)))
        actors = (count, count)
    if actors[0] * per_actor >= total:
        # Ray would place the actors and never the tasks that read and decode for them: a silent hang.
        raise InputError(
            f"{actors[0]} actor(s) x {per_actor} thread(s) reserve all {total:g} CPUs of the cluster, leaving "
            "none to read and decode the images: lower --actors or --threads-per-actor, or add a node"
        )
    return ActorPlan(actors[0], actors[1], per_actor, 1 if on_gpus else 0)


def cluster_nodes() -> list[tuple[float, float]]:
    """``(CPUs, GPUs)`` of every alive node of the connected cluster."""
    return [
        (float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    ]
