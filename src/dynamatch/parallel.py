"""Where independent work runs: in this process, or on a Dask cluster — one interface for both.

``executor(workers=None, scheduler=None)`` gives a :class:`SerialExecutor` (runs each task when it is
submitted) or a :class:`DaskExecutor` (a ``LocalCluster`` of ``workers`` processes, or the cluster at
``scheduler``, ``tcp://host:port``).  Both have ``submit(fn, *args, **kwargs) -> future`` and
``wait_first(futures) -> done futures`` (in submission order) and ``share(value)`` (send a large
argument to the workers once); ``future.result()`` returns the value or raises the task's error.  Dask is imported only here and only when asked for (``pip install dynamatch[dask]``).

Numba inside workers: each task sets numba's thread count (``threads_per_task``; for a local cluster
``cores // workers`` so that workers × threads ≤ cores), and the kernels' ``cache=True`` files are
shared by every worker on one file system, so a worker loads compiled code instead of recompiling.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as _futures_wait
from typing import Any, Callable, Iterable, Iterator

from .errors import ParameterError


class SerialExecutor:
    """Runs every task at submission, in this process; the reference the Dask executor must match."""

    workers = 1

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(error)
        return future

    def wait_first(self, futures: Iterable[Future]) -> list[Future]:
        futures = list(futures)
        done = _futures_wait(futures, return_when=FIRST_COMPLETED).done
        return [f for f in futures if f in done]  # submission order, as the Dask executor

    def share(self, value: Any) -> Any:
        """``value`` itself (the Dask executor sends it to every worker once instead)."""
        return value

    def close(self) -> None:
        pass


def _run_with_threads(threads: int | None, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` on a worker with numba limited to ``threads`` threads (None: leave as is)."""
    if threads is not None:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return fn(*args, **kwargs)


class DaskExecutor:
    """Tasks on a Dask ``distributed`` cluster (local or remote); same interface as :class:`SerialExecutor`."""

    def __init__(self, client: Any, threads_per_task: int | None, cluster: Any = None) -> None:
        self.client, self.cluster, self.threads_per_task = client, cluster, threads_per_task
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))

    def submit(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return self.client.submit(_run_with_threads, self.threads_per_task, fn, *args, pure=False, **kwargs)

    def share(self, value: Any) -> Any:
        """``value`` sent to every worker once (a future that tasks receive as the value): large arrays
        are not pickled again into every task."""
        return self.client.scatter(value, broadcast=True)

    def wait_first(self, futures: Iterable[Any]) -> list[Any]:
        from distributed import wait

        futures = list(futures)
        done = wait(futures, return_when="FIRST_COMPLETED").done
        return [f for f in futures if f in done]  # submission order: deterministic among ties

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "--workers/--scheduler need Dask: pip install 'dynamatch[dask]'"
        ) from None
    return distributed


@contextlib.contextmanager
def executor(
    workers: int | None = None, scheduler: str | None = None, *, processes: bool = True,
    threads_per_task: int | None = None,
) -> Iterator[SerialExecutor | DaskExecutor]:
    """The executor for ``--workers``/``--scheduler`` (neither: serial, in this process).

    ``workers=N`` starts a ``LocalCluster`` of N single-threaded workers (``processes=False``: threads
    of this process, for tests); each task gets ``threads_per_task`` numba threads, by default
    ``cores // N``.  ``scheduler="tcp://host:port"`` connects to a running cluster; its workers keep
    the numba thread count of their environment (``NUMBA_NUM_THREADS``) unless ``threads_per_task``.
    """
    if workers is not None and scheduler is not None:
        raise ParameterError("give either --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is None and scheduler is None:
        yield SerialExecutor()
        return
    distributed = _import_distributed()
    cluster = None
    if scheduler is not None:
        if not str(scheduler).startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise ParameterError(f"--scheduler {scheduler!r}: give the scheduler's address as tcp://host:port")
        try:
            client = distributed.Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise ParameterError(
                f"--scheduler {scheduler}: cannot reach the Dask scheduler ({error}); start it with `dask scheduler`"
            ) from None
    else:
        if int(workers) < 1:
            raise ParameterError(f"--workers must be at least 1, got {workers}")
        if threads_per_task is None:
            threads_per_task = max(1, (os.cpu_count() or 1) // int(workers))
        cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=processes,
                                           dashboard_address=None, silence_logs=40)
        client = distributed.Client(cluster)
    pool = DaskExecutor(client, threads_per_task, cluster)
    try:
        yield pool
    finally:
        pool.close()
