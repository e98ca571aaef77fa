"""Starting one server process tree, waiting until it is ready, sampling its memory, stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil


@dataclass(frozen=True)
class ServerSpec:
    """How to start a server: argv and env (merged over ours), the URL path to load and to poll."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    predict_path: str = "/predict"
    ready_path: str = "/readyz"
    description: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RssSampler:
    """Sums the RSS of a process and all its descendants every `interval` seconds, in a thread.

    Shared pages are counted once per process (plain RSS), as `ps` and most dashboards do."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self._pid, self._interval = pid, interval
        self._peak = self._phase_peak = 0
        self._processes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        try:
            root = psutil.Process(self._pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += process.memory_info().rss
        with self._lock:
            self._peak = max(self._peak, total)
            self._phase_peak = max(self._phase_peak, total)
            self._processes = max(self._processes, len(tree))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def phase_peak_mb(self) -> float:
        """Peak since the previous call (one measurement phase), then start a new phase."""
        self._sample()
        with self._lock:
            peak, self._phase_peak = self._phase_peak, 0
        return round(peak / 1e6, 1)

    @property
    def peak_mb(self) -> float:
        return round(self._peak / 1e6, 1)

    @property
    def processes(self) -> int:
        return self._processes

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) used so far by the process tree, summed by role: "worker" for
    BentoML's HTTP workers (which run the model), "supervisor" for `bentoml serve` itself, which
    only watches them, "server" for a single-process server."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    roles: dict[str, float] = {}
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            command = " ".join(process.cmdline())
            times = process.cpu_times()
            role = "worker" if "_bentoml_impl.worker" in command else "supervisor" if "bentoml" in command else "server"
            roles[role] = roles.get(role, 0.0) + times.user + times.system
    return roles


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    sampler: RssSampler
    start_s: float
    spec: ServerSpec = field(repr=False)

    @property
    def predict_url(self) -> str:
        return self.url + self.spec.predict_path


def start(spec: ServerSpec, log: Path, timeout: float = 180.0) -> RunningServer:
    """Start `spec` on a free port ({port} in its argv) and wait until its ready path answers 200."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in spec.argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=spec.cwd, env=os.environ | spec.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    sampler = RssSampler(process.pid).start()
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(url, process, log, sampler, 0.0, spec)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sampler.stop()
            raise RuntimeError(f"{argv} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + spec.ready_path, timeout=2).status_code == 200:
                server.start_s = round(time.perf_counter() - began, 2)
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    stop(server)
    raise TimeoutError(f"{argv} not ready after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_tree(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM to the process group of `process` (started with start_new_session), a grace period,
    then SIGKILL, by PID, to whatever of its tree is left: BentoML's workers run in process groups of
    their own, and one still holding an abandoned /readyz probe waits for the 30 s traffic timeout."""
    try:
        root = psutil.Process(process.pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        processes = []
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for survivor in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            survivor.kill()
    psutil.wait_procs(alive, timeout=10)
    process.wait()


def stop(server: RunningServer, grace: float = 10.0) -> None:
    server.sampler.stop()
    stop_tree(server.process, grace)
