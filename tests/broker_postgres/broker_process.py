"""One broker process serving a config on a loopback port (run by path by the multi-process tests).

    python broker_process.py CONFIG.toml PORT

Builds the broker exactly as the broker command does (config → store → engines → app, reaper on),
prints "ready" once the port answers, and serves until killed.
"""

from __future__ import annotations

import sys
import threading
import time

import httpx
import uvicorn
from jitsec.broker.api.app import create_app
from jitsec.broker.config import load_config
from jitsec.broker.runtime import build_broker


def main(config_path: str, port: int) -> None:
    broker = build_broker(load_config(config_path))
    app = create_app(broker, close_broker=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    print("ready", flush=True)
    thread.join()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
