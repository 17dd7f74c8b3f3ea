"""Where a sweep's runs execute: a local process pool (default) or Ray tasks.

Both call ``execute`` on one scenario: it runs it into a private temporary folder and returns
the output files as bytes (or the error), and the sweep's own process writes them into
``DIR/runs/<id>/`` as a whole. So a worker on another machine of a Ray cluster needs no shared
file system, a worker that dies loses only its run, and both executors give the same bytes.

Ray is optional (``pip install 'netemu[ray]'``). ``--ray auto`` joins a Ray instance already
running on this machine (``RAY_ADDRESS`` or ``ray start``) or starts a local one; ``--ray
ADDRESS`` (``HOST:PORT`` of the head node, or ``ray://HOST:PORT`` of a Ray client server) is
first checked with a short TCP connection, so an unreachable address is one line before any run.
Each run asks for ``[compute] threads`` CPUs (at least 1) and, when its compute device is CUDA
(``device = "cuda"``, or ``"auto"`` on a cluster that has GPUs), one GPU.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
from pathlib import Path

from netemu.errors import NetemuError

CONNECT_TIMEOUT = 5.0  # seconds to reach a Ray address before giving up
RAY_INSTALL = "pip install 'netemu[ray]' (or pip install ray)"


def execute(sc) -> tuple[str, object]:
    """Run scenario ``sc``: ``("ok", {file name: bytes})`` or ``("failed", one-line error)``."""
    from netemu.runner import run_scenario
    from netemu.sweeps.store import collect

    with tempfile.TemporaryDirectory(prefix="netemu-sweep-") as tmp:
        target = Path(tmp) / "run"
        try:
            run_scenario(sc, target, progress=False)
        except Exception as e:  # the run failed: its error is its result, the sweep goes on
            return "failed", error_text(e)
        return "ok", collect(target)


def error_text(e: BaseException) -> str:
    text = " ".join(str(e).split()) or "(no message)"
    return text if isinstance(e, NetemuError) else f"{type(e).__name__}: {text}"


def _quiet_worker() -> None:
    """Pool workers leave Ctrl-C to the sweep's process, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool:
    """``jobs`` worker processes (spawned); at most ``jobs`` runs are handed out at a time, so a
    worker that dies (killed, out of memory) takes only the runs it held: they are given once
    more to a fresh pool, and recorded as failed if their worker dies again."""

    name = "local pool"

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or os.cpu_count() or 1)

    def close(self) -> None: ...

    def map(self, runs: list, on_done) -> None:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        queue = list(runs)
        deaths: dict = {}
        while queue:
            pool = ProcessPoolExecutor(max_workers=min(self.jobs, len(queue)),
                                       mp_context=mp.get_context("spawn"), initializer=_quiet_worker)
            held: dict = {}
            try:
                broken = False
                while (queue or held) and not broken:
                    while queue and len(held) < self.jobs:
                        run = queue.pop(0)
                        held[pool.submit(execute, run.scenario)] = run
                    done, _ = wait(held, return_when=FIRST_COMPLETED)
                    for fut in done:
                        run = held.pop(fut)
                        try:
                            status, payload = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            deaths[run.id] = deaths.get(run.id, 0) + 1
                            if deaths[run.id] >= 2:
                                on_done(run, "failed", "the worker process running it died twice "
                                                       "(killed, or out of memory)")
                            else:
                                queue.insert(0, run)
                            continue
                        on_done(run, status, payload)
                if broken:  # the others this pool held go back to the queue
                    for fut, run in held.items():
                        queue.insert(0, run)
                    held.clear()
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown(wait=not broken, cancel_futures=True)


def _stop(pool) -> None:
    """Stop the workers now, not after their runs (an interrupted sweep)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _address(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    default = 10001 if address.startswith("ray://") else 6379
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not port:
        return rest, default
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise NetemuError(f"--ray {address}: {port!r} is not a port; give HOST:PORT (e.g. 10.0.0.5:6379), "
                          f"ray://HOST:PORT or auto") from None


def check_ray(address: str) -> None:
    """Ray installed, and ``address`` (unless ``auto``) reachable: else one line, before any run."""
    from importlib.util import find_spec

    if find_spec("ray") is None:
        raise NetemuError(f"--ray {address}: Ray is not installed; install it with {RAY_INSTALL}, "
                          f"or leave out --ray to use local processes")
    if address == "auto":
        return
    host, port = _address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise NetemuError(f"--ray {address}: cannot reach a Ray cluster at {host}:{port} within "
                          f"{CONNECT_TIMEOUT:g} s ({e.strerror or e}); check the address "
                          f"(ray status on the head node) or use --ray auto for a local one") from None


def resources(sc, cluster_has_gpus: bool) -> tuple[int, int]:
    """``(CPUs, GPUs)`` one run of ``sc`` asks Ray for: ``[compute] threads`` CPUs (at least 1; 0,
    torch's default, counts as 1), and one GPU when it computes on CUDA: ``device = "cuda"``, or
    ``"auto"`` for an optimization task on a cluster that has GPUs."""
    c = sc.compute or {}
    optimizing = sc.task["kind"] != "consensus"
    cuda = optimizing and (c.get("device") == "cuda" or (c.get("device") == "auto" and cluster_has_gpus))
    return max(1, int(c.get("threads") or 1)), 1 if cuda else 0


def _unwrapped(fn, *args, **kwargs):
    """``fn(...)``; a signal handler's exception that Ray wraps in a ``SystemError`` (SIGTERM's
    ``Terminated``) is raised as itself."""
    try:
        return fn(*args, **kwargs)
    except SystemError as e:
        cause = e.__cause__
        if isinstance(cause, BaseException) and not isinstance(cause, Exception):
            raise cause from None
        raise


class RayExecutor:
    """The runs as Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str = "auto") -> None:
        check_ray(address)
        self.address = address
        self.started = False
        self._init()  # joined (or started) before the sweep writes anything

    def close(self) -> None:
        import ray

        if self.started and ray.is_initialized():
            ray.shutdown()

    def _init(self) -> None:
        import ray

        term = signal.getsignal(signal.SIGTERM)
        if ray.is_initialized():
            return
        try:
            self._init_ray(ray)
        finally:  # Ray's own SIGTERM handler would end the process without the sweep's clean-up
            if term is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, term)

    def _init_ray(self, ray) -> None:
        quiet = dict(logging_level="ERROR", log_to_driver=False)
        if self.address == "auto":
            try:
                ray.init(address="auto", **quiet)
            except ConnectionError:  # none running here: a local instance of our own
                ray.init(include_dashboard=False, **quiet)
                self.started = True
        else:
            try:
                ray.init(address=self.address, **quiet)
            except Exception as e:
                raise NetemuError(f"--ray {self.address}: cannot join the Ray cluster: "
                                  f"{' '.join(str(e).split())[:300]}") from None

    def map(self, runs: list, on_done) -> None:
        import ray

        gpus = ray.cluster_resources().get("GPU", 0) > 0
        remote = ray.remote(execute)
        pending = {}
        try:
            for run in runs:
                cpus, gpus_wanted = resources(run.scenario, gpus)
                ref = remote.options(num_cpus=cpus, num_gpus=gpus_wanted).remote(run.scenario)
                pending[ref] = run
            while pending:
                # a timeout, so that Ctrl-C and SIGTERM are handled while runs are under way
                done, _ = _unwrapped(ray.wait, list(pending), num_returns=1, timeout=1.0)
                for ref in done:
                    run = pending.pop(ref)
                    try:
                        status, payload = _unwrapped(ray.get, ref)
                    except Exception as e:  # the task's worker died, or Ray lost it
                        status, payload = "failed", f"Ray task failed: {' '.join(str(e).split())[:500]}"
                    on_done(run, status, payload)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
