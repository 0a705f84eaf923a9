"""A real Ray cluster for the tests: a head and a second node (``ray start``), on 127.0.0.1 only.

Every port is a free one, every file lives under a temporary folder of its own, and the
cluster has its own token (``RAY_AUTH_MODE=token``): nothing is shared with another Ray on
the machine. Each ``ray start`` runs in a new session, so its daemons share one process group;
:meth:`LoopbackCluster.stop` ends those groups and the worker processes under their raylets,
by id, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.cli import process_env
from tests.support.paths import REPO
from tests.support.s3_server import free_port


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of every process now."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]), cmdline)
    return found


class LoopbackCluster:
    """``ray start --head`` and ``ray start --address``, ``cpus`` CPUs each, environment ``env`` (+ this checkout)."""

    def __init__(self, env: Mapping[str, str | None], cpus: int = 2) -> None:
        # Unix socket paths must stay short: a folder of its own directly under /tmp.
        self.root = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.token = self.root / "token"
        self.token.write_text(secrets.token_hex(32))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: list[int] = []
        self.env = process_env({**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token)})
        self.env.pop("RAY_ADDRESS", None)
        common = [f"--num-cpus={cpus}", "--disable-usage-stats", "--object-store-memory=150000000"]
        try:
            self._start(
                "--head",
                f"--port={self.port}",
                "--node-ip-address=127.0.0.1",
                "--include-dashboard=false",
                f"--temp-dir={self.root / 'ray'}",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                *common,
            )
            self._start(
                f"--address={self.address}",
                "--node-ip-address=127.0.0.1",
                f"--dashboard-agent-listen-port={free_port()}",
                *common,
            )
        except BaseException:
            self.stop()
            raise

    def _start(self, *args: str) -> None:
        log = self.root / f"start-{len(self.groups)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.ray_loopback", "start", *args],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its daemons share this process group: stop() ends it
            )
            self.groups.append(process.pid)
            code = process.wait(timeout=120)
        if code != 0:
            raise RuntimeError(f"ray start {' '.join(args[:2])} failed ({code}): {log.read_text()[-2000:]}")

    def driver_env(self, **more: str | None) -> dict[str, str | None]:
        """The environment of a driver joining this cluster on loopback, with its token."""
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token),
            # A driver resolves 127.0.0.1 to the default route's address too; this keeps it on loopback.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_ADDRESS": None,
            **more,
        }

    def _ours(self) -> dict[int, str]:
        """pid -> command line of the cluster's processes: its two process groups and everything under them."""
        table = _processes()
        ours = {pid for pid, (_, group, _) in table.items() if group in self.groups}
        grew = True
        while grew:  # Ray's workers start sessions of their own: follow the parent links
            children = {pid for pid, (parent, _, _) in table.items() if parent in ours} - ours
            ours |= children
            grew = bool(children)
        return {pid: table[pid][2] for pid in ours}

    def actor_pids(self, name: str) -> list[int]:
        """Processes of this cluster running an actor whose title contains ``name``."""
        return sorted(pid for pid, cmdline in self._ours().items() if cmdline.startswith("ray::") and name in cmdline)

    def stop(self) -> None:
        """End the cluster's processes (TERM, then KILL after 3 s) and delete its folder."""
        ours = self._ours()

        def alive() -> list[int]:  # still there, and still the same program (a pid is never reused blindly)
            now = _processes()
            return [pid for pid, cmdline in ours.items() if pid in now and now[pid][2] == cmdline]

        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and alive():
            time.sleep(0.2)
        for pid in alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
