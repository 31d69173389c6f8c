"""Running map-mode jobs at once: small runs in threads, large ones in forked worker processes."""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import queue
import threading
from dataclasses import replace

from migrate.config import ClusterProfile, redact_text
from migrate.errors import KafkaOperationError, MigrateError, UsageError
from migrate.validation.map_compare import _MapJob, _run_jobs
from migrate.validation.spec import ValidateSpec
from migrate.validators.divergence import Tally


def _run_in_threads(spec: ValidateSpec, jobs: list[_MapJob], workers: int) -> list[tuple[Tally, dict, dict]]:
    """Small runs: threads (no start-up cost); a thread waiting on a fetch holds no GIL."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    failures: list[BaseException] = []
    outcomes: list[tuple[Tally, dict, dict]] = []

    def next_job() -> _MapJob | None:
        if failures:
            return None
        try:
            return todo.get_nowait()
        except queue.Empty:
            return None

    def work() -> None:
        try:
            outcomes.append(_run_jobs(spec, next_job))
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, name=f"validate-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return outcomes


def _portable(profile: ClusterProfile) -> ClusterProfile:
    return ClusterProfile(profile.name, dict(profile.settings), {k: dict(v) for k, v in profile.role_overrides.items()})


def _process_job(spec: ValidateSpec, job: _MapJob) -> tuple[Tally, dict, dict]:
    remaining = [job]
    return _run_jobs(spec, lambda: remaining.pop() if remaining else None)


def _run_in_processes(spec: ValidateSpec, jobs: list[_MapJob], workers: int) -> list[tuple[Tally, dict, dict]]:
    """Large runs: worker processes, so that hashing and comparing use every core (no shared GIL).

    Forked, not spawned: a spawned child would re-run the command's entry module.  No Kafka
    client of this process is alive at this point (each was closed), so the children start
    clean and make their own consumers.
    """
    gc.collect()  # destroy any client object still waiting for collection before forking
    portable = replace(spec, source=_portable(spec.source), target=_portable(spec.target))
    outcomes = []
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_process_job, portable, job) for job in jobs]
        try:
            for future in concurrent.futures.as_completed(futures):
                outcomes.append(future.result())
        except MigrateError as exc:
            for future in futures:
                future.cancel()
            raise type(exc)(redact_text(str(exc))) if type(exc) in (KafkaOperationError, UsageError) else exc
        except concurrent.futures.process.BrokenProcessPool as exc:
            raise KafkaOperationError(f"a validation worker process died ({exc}); rerun with --parallel 1") from None
    return outcomes
