"""Test-only network pieces for the S3 store tests: a moto S3 server process and a TCP proxy.

The proxy sits between boto3 and moto and can cut a response after a given number of
bytes (a connection dropped mid-download), or answer nothing at all (a silent server).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

#: Fake credentials; the secret is a sentinel the tests look for in every output.
ACCESS_KEY = "AKIASTORETESTKEY0001"
SECRET_KEY = "store-test-SECRET-sentinel-0123456789abcd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on a free port of 127.0.0.1, started and stopped by the tests."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 - kept open for the server's lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not answer on {self.url} within 30 s") from None
                time.sleep(0.05)

    def set_auth(self, enforce: bool) -> None:
        """Turn moto's IAM authentication/authorization on (every request checked) or off."""
        body = b"0" if enforce else b"inf"
        # text/plain: with urllib's default form type, the server would parse the body as a form and see none.
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=5):
            pass

    def stop(self) -> None:
        """Terminate the server process (kill it if it does not stop in 5 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()


class CuttingProxy:
    """TCP proxy to ``upstream`` that can drop a connection after ``cut_after`` response bytes.

    The next ``cuts_left`` responses longer than ``cut_after`` are cut there (``-1``: all of
    them); shorter ones (manifests, errors) always pass. With ``silent`` set, it accepts
    connections and never answers.
    """

    def __init__(self, upstream_port: int, cut_after: int = 64 * 1024) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = 0
        self.silent = False
        self.cuts = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left == 0:
                return False
            if self.cuts_left > 0:
                self.cuts_left -= 1
            self.cuts += 1
            return True

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._open.append(client)
            if self.silent:
                continue  # keep the socket open and never answer
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            except OSError:
                client.close()
                continue
            self._open.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.cut_after), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    if self._take_cut():
                        sink.sendall(data[: max(0, limit - sent)])
                        break
                    limit = None
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        """Stop accepting and close every open socket."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.close()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None, files with their bytes): to prove a failure changed nothing."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def upload(s3, bucket: str, prefix: str, root: Path) -> list[str]:
    """Copy every file under ``root`` to ``s3://bucket/prefix/<relative path>``; the URIs, sorted."""
    uris = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(root).as_posix()}"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        uris.append(f"s3://{bucket}/{key}")
    return sorted(uris)


def objects(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under ``prefix`` with its bytes (to prove what a run left, or that it changed nothing)."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found
