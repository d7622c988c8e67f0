"""Scanning on Ray: the scans of `detector.load()`'s Scanner, spread over worker processes on this
machine or on many, for `scan_batch` and the command line's --ray.

Each worker is a Ray actor that loads the model and face detector once (`detector.load`) and scans
the paths sent to it. The driver keeps IN_FLIGHT inputs queued per worker, so a worker never
waits for the next one and a slow input holds up only its own worker, and yields the results in
input order, so scan_batch writes results.csv, the details and the report as it does for a local
scan, on the machine that runs the command. Paths travel as text: the inputs and the model must
be at the same absolute paths on every machine (a shared filesystem), and every machine needs
the same Python packages; this package's own code is sent along with the workers.

A worker that dies (killed, out of memory, a crash in a native decoder) is replaced by a fresh
one and its unfinished inputs are sent again. The input it was scanning is blamed for the death;
one blamed MAX_ATTEMPTS times ends as an "error" row instead of taking down worker after worker,
and, like any error row, is scanned again by the next run.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import detector
from detector.api import DEFAULT_MODEL_DIR, DeviceError, NoDefaultModel
from detector.scan.model import Contract
from detector.scan.scanner import ScanResult, Settings
from detector.scan.status import Status

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.actor import ActorHandle

log = logging.getLogger("detector")

IN_FLIGHT = 2  # inputs queued on a worker: one scanning, one ready to start the moment it finishes
MAX_ATTEMPTS = 2  # scans of one input that may kill its worker before it is recorded as an error
AHEAD = 4  # results held back for input order, per input in flight: bounds the driver's memory
CONNECT_TIMEOUT_S = 10.0  # an unreachable address fails in seconds, not after Ray's minutes of retries


class ClusterError(Exception):
    """Ray cannot be reached, or cannot hold or start the workers asked for; the message says why."""


@dataclass(frozen=True)
class WorkerModel:
    """The workers' model as the driver needs it (the resume key, the -v line, the `model` of an
    error result) without loading TensorFlow's copy of it here."""
    path: Path
    fingerprint: str
    runtime: str  # what scores the crops on the workers: "onnx" or "tensorflow"
    contract: Contract
    description: Mapping  # Model.describe(), as a worker gave it

    def describe(self) -> dict:
        return dict(self.description)


class ScanWorker:
    """One Ray actor: a Scanner loaded once, scanning the paths sent to it one at a time.

    A load error is kept and raised by `ready` (and `scan`), so the driver gets the ModelError or
    DeviceError itself rather than Ray's report of a failed actor start."""

    def __init__(self, model: str, device: str, options: dict[str, Any]):
        self.error: Exception | None = None
        try:
            self.scanner = detector.load(model, device, **options)
        except Exception as exc:  # whatever stops the load, the driver is to see it, not Ray's report
            self.error = exc

    def ready(self) -> tuple[Settings, str, WorkerModel]:
        """The settings, resume key and model this worker scans with."""
        if self.error is not None:
            raise self.error
        model = self.scanner.model
        description = model.describe()
        return self.scanner.settings, self.scanner.settings_key, WorkerModel(
            model.path, model.fingerprint, description["runtime"], model.contract, description)

    def scan(self, path: str, explain: bool) -> ScanResult:
        if self.error is not None:
            raise self.error
        return self.scanner.scan(path, explain)


class RayScanner:
    """Stands in for a Scanner in `scan_batch`: `settings_key`, `settings`, `model` and a
    `scan_many` that scans on Ray workers. Close it (or use `with`) to stop the workers.

    `address` None starts a private Ray on this machine, without the dashboard and listening on
    the loopback address only (anyone who reaches a Ray can run code on it); an address
    ("HEAD:6379", or "auto" for the cluster `ray start` runs on this machine) joins that cluster.
    A Ray this process had already started is used as it is (the workers then import this
    package from their own installation). `workers` defaults to one per GPU where the model goes
    on GPUs, else one per two CPUs of the cluster: the decoder, the face detector and the model
    each run threads of their own, and every worker holds its own TensorFlow and torch. `device`
    "auto" means the GPU where the cluster has one for every worker. `options` are
    `detector.load`'s keyword arguments (frames, batch_size, aggregate, threshold, ...).

    The resume key, settings and model come from the workers themselves (each reports them once
    loaded, and they must agree): so the key is a local Scanner's by construction, a different
    model file at the same path on another machine is caught, and the driver loads no model."""

    # No in-progress marks in the results folder (api.scan_batch): the scans run in the workers,
    # and an input that kills worker after worker is _Batch's to blame; the driver decodes nothing.
    in_process = False

    def __init__(self, model: str | os.PathLike | None = None, device: str = "auto", *, address: str | None = None,
                 workers: int | None = None, **options: Any):
        if model is None:  # resolved here: a worker's copy of this package has no models/ beside it
            if not (DEFAULT_MODEL_DIR / "saved_model.pb").exists():
                raise NoDefaultModel(DEFAULT_MODEL_DIR)
            model = DEFAULT_MODEL_DIR
        self._workers: list[ActorHandle] = []
        self._initialised = _connect(address, workers)
        try:
            import ray

            device, count, gpus = _plan(device, workers, ray.cluster_resources())
            log.info("starting %d Ray worker(s) on the %s, each loading the model on the %s", count,
                     f"cluster at {address}" if address else "Ray started here", device.upper())
            self._actor = ray.remote(ScanWorker).options(num_cpus=1, num_gpus=gpus)
            self._arguments = (str(Path(model).resolve()), device, options)
            self._workers = [self._start_worker() for _ in range(count)]
            answers = self._ready()
        except BaseException:
            self.close()
            raise
        self.settings, self.settings_key, self.model = answers[0]
        if len({key for _, key, _ in answers}) > 1:
            self.close()
            raise ClusterError(f"the Ray workers loaded different models from {self.model.path}: "
                               "every machine must have the same model files at that path")

    def _start_worker(self) -> ActorHandle:
        return self._actor.remote(*self._arguments)

    def _ready(self) -> list[tuple[Settings, str, WorkerModel]]:
        """Every worker's answer once loaded; its own load error (ModelError, DeviceError) raised as is."""
        import ray

        try:
            return ray.get([worker.ready.remote() for worker in self._workers])
        except ray.exceptions.RayTaskError as exc:
            raise exc.cause from None
        except ray.exceptions.RayError as exc:
            raise ClusterError(f"the Ray workers could not start: {_first_line(exc)}") from None

    def scan_many(self, paths: Iterable[str | os.PathLike], explain: bool = False) -> Iterator[ScanResult]:
        """Each input's result in input order, scanned on the workers; never raises for a bad input
        nor for a worker that dies while scanning it."""
        batch = _Batch(self, [str(Path(os.path.abspath(p))) for p in paths], explain)
        try:
            for wanted in range(len(batch.paths)):
                while wanted not in batch.finished:
                    batch.send(horizon=wanted + AHEAD * IN_FLIGHT * len(self._workers))
                    batch.settle()
                yield batch.finished.pop(wanted)
        finally:
            batch.cancel()

    def _failed(self, path: str, error: str) -> ScanResult:
        """An error result made here, for an input no worker could give one for."""
        try:
            stat = os.stat(path)
            size, mtime_ns = stat.st_size, stat.st_mtime_ns
        except OSError:
            size = mtime_ns = None
        return ScanResult(path=path, status=Status.ERROR, error=error, size=size, mtime_ns=mtime_ns, settings=self.settings,
                          settings_key=self.settings_key, model=self.model.describe())

    def close(self) -> None:
        """Stop the workers, and Ray itself where this scanner started or joined it."""
        import ray

        for worker in self._workers:
            ray.kill(worker)
        self._workers = []
        if self._initialised:
            ray.shutdown()
            self._initialised = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Batch:
    """One scan_many call's bookkeeping: what is queued on which worker, what finished, and which
    inputs were being scanned when their worker died.

    A worker runs its queued scans one at a time in the order sent, so the oldest unfinished scan
    on a worker that died is the one it was running: that input is blamed, the others queued
    behind it are sent again as they were. A dead worker is replaced by a fresh one (rather than
    restarted by Ray, which fails the scans sent while it restarts); a worker that cannot load
    the model any more is dropped."""

    def __init__(self, scanner: RayScanner, paths: list[str], explain: bool):
        self.scanner, self.paths, self.explain = scanner, paths, explain
        self.todo = deque(range(len(paths)))  # input numbers to send, retries first
        self.sent: dict[ObjectRef, tuple[int, ActorHandle, int]] = {}  # ref → (send order, worker, input number)
        self.queued: dict[ActorHandle, deque[ObjectRef]] = {w: deque() for w in scanner._workers}  # [0]: scanning
        self.deaths: dict[int, list[str]] = {}  # input number → why each worker scanning it died
        self.finished: dict[int, ScanResult] = {}
        self.order = 0
        self.dropped = ""  # why the last worker that can no longer scan was dropped

    def send(self, horizon: int) -> None:
        """Fill every worker's queue, with inputs numbered below `horizon` only."""
        for worker in self.scanner._workers:
            while len(self.queued[worker]) < IN_FLIGHT and self.todo and self.todo[0] < horizon:
                index = self.todo.popleft()
                ref = worker.scan.remote(self.paths[index], self.explain)
                self.sent[ref], self.order = (self.order, worker, index), self.order + 1
                self.queued[worker].append(ref)
        if not self.scanner._workers:
            error = f"no Ray worker left to scan it: {self.dropped}"
            self.finished.update((i, self.scanner._failed(self.paths[i], error)) for i in self.todo)
            self.todo.clear()

    def settle(self) -> None:
        """Wait for a scan to end, then take in every ended one: its result, or its worker's death."""
        import ray

        if not self.sent:
            return
        ray.wait(list(self.sent), num_returns=1)
        ready, _ = ray.wait(list(self.sent), num_returns=len(self.sent), timeout=0)
        for ref in sorted(ready, key=lambda r: self.sent[r][0]):  # a worker's scans in the order it ran them
            _, worker, index = self.sent[ref]
            try:
                self.finished[index] = ray.get(ref)
            except _worker_lost() as exc:
                if getattr(exc, "actor_init_failed", False):
                    self._drop(worker, exc)
                elif worker in self.scanner._workers:  # the first news of this death
                    self._blame(worker, exc)
                self._retry(index)
            except ray.exceptions.RayTaskError as exc:  # a replacement that could not load the model
                self._drop(worker, exc.cause or exc)
                self.todo.appendleft(index)
            finally:
                del self.sent[ref]
                self.queued[worker].remove(ref)

    def _blame(self, worker: ActorHandle, exc: Exception) -> None:
        """Blame the input the dead worker was scanning, and start a fresh worker in its place."""
        culprit = self.sent[self.queued[worker][0]][2]
        self.deaths.setdefault(culprit, []).append(_first_line(exc))
        log.warning("a Ray worker died while scanning %s (%s)", self.paths[culprit], _first_line(exc))
        fresh = self.scanner._start_worker()
        workers = self.scanner._workers
        workers[workers.index(worker)] = fresh
        self.queued[fresh] = deque()

    def _retry(self, index: int) -> None:
        """Send an input whose worker died again, unless it has killed MAX_ATTEMPTS workers."""
        deaths = self.deaths.get(index, [])
        if len(deaths) < MAX_ATTEMPTS:
            self.todo.appendleft(index)
        else:
            self.finished[index] = self.scanner._failed(self.paths[index], (
                f"a Ray worker died each of the {len(deaths)} times it scanned this input (last: {deaths[-1]})"))

    def _drop(self, worker: ActorHandle, exc: BaseException) -> None:
        """Stop a worker that can no longer scan; its queued inputs go to the others."""
        import ray

        if worker in self.scanner._workers:
            self.scanner._workers.remove(worker)
            ray.kill(worker)
            self.dropped = _first_line(exc)
            log.warning("a Ray worker can no longer scan (%s); %d left", self.dropped, len(self.scanner._workers))

    def cancel(self) -> None:
        """Stop the scans still queued (a batch ended early)."""
        import ray

        for ref in self.sent:
            ray.cancel(ref)


def _connect(address: str | None, workers: int | None) -> bool:
    """Ray, ready to use; whether this call started or joined it (False: this process already had)."""
    if address is None and "ray" not in sys.modules:
        # Ray reads this on import: off, a Ray started here binds the loopback address, not every interface
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                               # this package's code, sent to every worker: the workers scan as the driver would
                               "runtime_env": {"py_modules": [str(Path(detector.__file__).parent)]}}
    if address is None:
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, workers or 0), **options)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {_first_line(exc)} (a cluster with token "
                           "authentication also needs RAY_AUTH_MODE=token and its token here)") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nothing listens on ("auto" and ray:// addresses are Ray's to find)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _plan(device: str, workers: int | None, resources: Mapping[str, float]) -> tuple[str, int, int]:
    """The workers' device, how many workers, and the GPUs each one reserves."""
    cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
    if device == "gpu" or (device == "auto" and gpus and (workers or gpus) <= gpus):
        count = workers or max(gpus, 1)
        if count > gpus:
            raise DeviceError(f"--device gpu: {count} Ray worker(s) need a GPU each, the cluster has {gpus}")
        return "gpu", count, 1
    count = workers or max(1, cpus // 2)
    if count > cpus:
        raise ClusterError(f"{count} Ray workers need a CPU each, the cluster has {cpus}")
    return "cpu", count, 0


def _worker_lost() -> tuple[type[Exception], ...]:
    """What ray.get raises when the worker process behind a scan died (not an error of the scan)."""
    from ray import exceptions

    return (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.NodeDiedError,
            exceptions.OutOfMemoryError)


def _first_line(exc: BaseException) -> str:
    """`Type: first line of the message`: Ray's messages run to many lines."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
