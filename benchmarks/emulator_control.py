"""The control side of an emulator process that a benchmark started: wait until it answers, then drive it
through its ``/_emulator`` API. Each benchmark builds its own command line (sizes, customers, latency, limits)."""

from __future__ import annotations

import time
from typing import Any


class EmulatorControl:
    """Mixed into a benchmark's ``Emulator``, which sets ``host`` ("127.0.0.1:port") and starts the process."""

    host: str
    control_timeout: float = 600

    def wait_until_up(self, seconds: float) -> None:
        import requests

        self.http = requests.Session()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.http.get(f"http://{self.host}/_emulator/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.5)
        raise RuntimeError("the emulator did not start")

    def control(self, verb: str, path: str, body: Any = None) -> Any:
        response = self.http.request(
            verb, f"http://{self.host}/_emulator{path}", json=body, timeout=self.control_timeout
        )
        response.raise_for_status()
        return response.json()
