"""Shared plumbing of the broker benchmarks: a broker process on a free port over a fresh config."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from jitsec.broker.bootstrap import init_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (Linux /proc): what the broker itself
    spent, whatever else the machine was doing."""
    total = 0.0
    pending = [pid]
    ticks = os.sysconf("SC_CLK_TCK")
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextmanager
def broker_process(
    workers: int = 1, edit: Callable[[str], str] | None = None
) -> Iterator[tuple[str, dict[str, str], Path, int]]:
    """Yields (url, principal keys, config path, pid) of a `jitsec broker serve` process."""
    with tempfile.TemporaryDirectory(prefix="jitsec-bench-") as tmp:
        config = Path(tmp) / "broker.toml"
        keys = init_config(config).keys
        if edit is not None:
            config.write_text(edit(config.read_text()))
        port = free_port()
        jitsec = os.path.join(os.path.dirname(sys.executable), "jitsec")
        process = subprocess.Popen(
            [
                jitsec,
                "broker",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ]
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the broker did not start")
                time.sleep(0.1)
            yield url, keys, config, process.pid
        finally:
            process.terminate()
            process.wait(30)


def start_task(url: str, keys: dict[str, str], scopes: list[str]) -> tuple[str, str]:
    """Start a demo-agent task as the orchestrator and redeem its grant: (task id, agent's task token)."""
    orchestrator = {"Authorization": f"Bearer {keys['orchestrator']}"}
    task = {"agent": "demo-agent", "task": "bench", "scopes": scopes, "ttl_seconds": 900}
    started = httpx.post(f"{url}/v1/tasks", json=task, headers=orchestrator).json()
    grant = {"Authorization": f"Bearer {started['grant']}"}
    redeemed = httpx.post(f"{url}/v1/tasks/{started['task_id']}/redeem", headers=grant).json()
    return str(started["task_id"]), str(redeemed["token"])


def task_token(url: str, keys: dict[str, str], scopes: list[str]) -> str:
    return start_task(url, keys, scopes)[1]


class RawConnection:
    """A minimal keep-alive HTTP/1.1 client connection for load generation: far cheaper per request
    than a full client library, so the load generator steals less CPU from the broker it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        host, _, port = url.removeprefix("http://").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    @staticmethod
    def build(method: str, path: str, headers: dict[str, str], body: dict | None) -> bytes:
        payload = json.dumps(body).encode() if body is not None else b""
        lines = [f"{method} {path} HTTP/1.1", "Host: bench", f"Content-Length: {len(payload)}"]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def run_load(
    url: str, request: bytes, *, total: int, concurrency: int
) -> tuple[float, list[float], int]:
    """``total`` copies of ``request`` (see ``RawConnection.build``) over ``concurrency`` keep-alive
    connections: (seconds, latencies, failures)."""
    connections = [await RawConnection.open(url) for _ in range(concurrency)]
    latencies: list[float] = []
    failures = 0
    remaining = total

    async def worker(connection: RawConnection) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status, _ = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            failures += status >= 400

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - began
    for connection in connections:
        connection.close()
    return elapsed, latencies, failures


def figures(total: int, elapsed: float, latencies: list[float], failures: int) -> dict[str, object]:
    return {
        "requests": total,
        "per_second": round(total / elapsed),
        "p50_ms": round(percentile(latencies, 50) * 1e3, 2),
        "p99_ms": round(percentile(latencies, 99) * 1e3, 2),
        "failures": failures,
    }


def report(title: str, figures: dict[str, object]) -> None:
    print(f"{title}: " + json.dumps(figures))
