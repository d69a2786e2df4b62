"""Executors of the study runner: run the same function on many argument tuples, in order.

An executor has one method, ``map(fn, args)``, that yields ``fn(*a)`` for each tuple ``a`` of
``args`` in the order of ``args``, whatever order the tasks finish in, so a study's results
are identical whichever executor ran it. It is a context manager that releases its workers
(process pool, Ray runtime) on exit::

    with make_executor("local", workers=4) as ex:
        for result in ex.map(fn, [(1, "a"), (2, "b")]):
            ...

Two executors:

* :class:`LocalExecutor`: in this process (one worker, or one task), else a process pool;
* :class:`RayExecutor`: Ray tasks, on a local Ray started for the purpose or on a cluster
  (needs the ``ray`` extra: ``pip install 'volguard[ray]'``).

``fn`` must be picklable (a module-level function) and so must the arguments and results,
except in-process. Tasks are all submitted when ``map`` is called; leaving the iteration early
cancels the tasks not yet started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

from volguard.errors import ConfigError

R = TypeVar("R")

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")
"""The names :func:`make_executor` accepts."""


class Executor(Protocol):
    """What the study runner needs of an executor: an ordered ``map`` and a ``with`` block."""

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> Iterator[R]:
        """Yield ``fn(*a)`` for each ``a`` in ``args``, in the order of ``args``."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _check_workers(workers: int | None, *, optional: bool = False) -> None:
    if workers is None and optional:
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        rule = "an int >= 1" + (" or None" if optional else "")
        raise ConfigError(f"workers must be {rule}, got {workers!r}")


def _in_process(fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> Iterator[R]:
    for a in args:
        yield fn(*a)


class LocalExecutor:
    """Run tasks on this machine: in this process, or in a pool of ``workers`` processes.

    Parameters
    ----------
    workers : int, default 1
        Number of worker processes. With 1, or when ``map`` gets a single task, tasks run
        in this process, one after the other, as the results are iterated (no pool, no
        pickling). Otherwise a :class:`concurrent.futures.ProcessPoolExecutor` of
        ``workers`` processes is started at the first such ``map`` and kept until the
        executor is closed.

    Raises
    ------
    ConfigError
        If ``workers`` is not an int >= 1.

    Examples
    --------
    >>> from volguard.lab.executors import LocalExecutor
    >>> with LocalExecutor(workers=2) as ex:
    ...     list(ex.map(pow, [(2, 10), (3, 2), (10, 0)]))
    [1024, 9, 1]
    >>> with LocalExecutor() as ex:
    ...     list(ex.map(divmod, [(7, 2)]))
    [(3, 1)]
    """

    def __init__(self, workers: int = 1) -> None:
        _check_workers(workers)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> Iterator[R]:
        """Yield ``fn(*a)`` for each tuple ``a`` of ``args``, in the order of ``args``.

        Parameters
        ----------
        fn : callable
            The task; picklable (module-level) when a pool runs it.
        args : sequence of tuple
            One tuple of positional arguments per task.

        Returns
        -------
        iterator
            The results, in the order of ``args``. With a pool every task is submitted
            before this returns; an exception raised by a task is raised when its result
            is reached.
        """
        if self.workers == 1 or len(args) <= 1:
            return _in_process(fn, args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return _in_order([self._pool.submit(fn, *a) for a in args])

    def close(self) -> None:
        """Shut the pool down (waiting for running tasks, cancelling queued ones), if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"


def _in_order(futures: list[Future[R]]) -> Iterator[R]:
    try:
        for future in futures:
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


class RayExecutor:
    """Run tasks as Ray tasks, on a local Ray runtime or on a Ray cluster.

    Parameters
    ----------
    address : str or None, default None
        Where Ray runs. None: a local Ray runtime with ``workers`` CPUs, started on entry
        (or the one ``RAY_ADDRESS`` names, as :func:`ray.init` does). ``"auto"``: the
        cluster this machine is a node of; ``"ray://host:10001"``: a remote cluster through
        the Ray client. If Ray is already initialised in this process it is used as it is.
    workers : int or None, default None
        CPUs of the local runtime (None: all of this machine's). Ignored when ``address``
        is given: a cluster has the CPUs it has.

    Raises
    ------
    ConfigError
        If Ray is not installed (``pip install 'volguard[ray]'``), or ``workers`` is not an
        int >= 1 or None.

    Notes
    -----
    Ray is initialised on entry (or at the first ``map``) with the dashboard off and the
    workers' output not forwarded, and shut down on exit only if this executor started it.
    Starting a local runtime takes seconds: keep one executor for many ``map`` calls. The
    tasks are all submitted at once; results are collected with ``ray.wait`` as they finish
    and yielded in the order of ``args``. ``fn`` and the arguments are pickled, so ``fn``
    must be importable by the Ray workers (a module-level function of an installed package).
    """

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        _check_workers(workers, optional=True)
        try:
            import ray
        except ImportError as exc:
            raise ConfigError(
                "executor 'ray' needs Ray, which is not installed: pip install 'volguard[ray]'"
            ) from exc
        self._ray: Any = ray
        self.address = address
        self.workers = workers
        self._started = False

    def start(self) -> None:
        """Initialise Ray unless it already is (done on entry and by ``map`` if need be)."""
        if self._ray.is_initialized():
            return
        self._ray.init(
            address=self.address,
            num_cpus=self.workers if self.address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
        self._started = True

    def map(self, fn: Callable[..., R], args: Sequence[tuple[Any, ...]]) -> Iterator[R]:
        """Yield ``fn(*a)`` for each tuple ``a`` of ``args``, in the order of ``args``.

        Parameters
        ----------
        fn : callable
            The task, run as ``ray.remote(fn)``; importable by the Ray workers.
        args : sequence of tuple
            One tuple of positional arguments per task.

        Returns
        -------
        iterator
            The results, in the order of ``args``; every task is submitted before this
            returns. A task's exception is raised when its result is reached (as Ray's
            ``RayTaskError``, which also subclasses the task's own exception type).
        """
        self.start()
        remote = self._ray.remote(fn)
        refs = [remote.remote(*a) for a in args]
        return self._in_order(refs)

    def _in_order(self, refs: list[Any]) -> Iterator[Any]:
        ray = self._ray
        index = {ref: i for i, ref in enumerate(refs)}
        ready: dict[int, Any] = {}
        pending = list(refs)
        try:
            for i in range(len(refs)):
                while i not in ready:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        ready[index[ref]] = ref
                yield ray.get(ready.pop(i))
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        """Shut Ray down if this executor started it."""
        if self._started:
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, workers={self.workers!r})"


def make_executor(
    name: str, workers: int = 1, address: str | None = None
) -> LocalExecutor | RayExecutor:
    """Build the executor called ``name`` (the study file's and the CLI's setting).

    Parameters
    ----------
    name : {'local', 'ray'}
        ``local``: :class:`LocalExecutor` with ``workers`` processes (``address`` must be
        None). ``ray``: :class:`RayExecutor` on ``address`` (None: a local Ray with
        ``workers`` CPUs).
    workers : int, default 1
        Number of worker processes, or the local Ray's CPUs.
    address : str or None, default None
        The Ray cluster (``"auto"``, ``"ray://host:10001"``); only for ``ray``.

    Returns
    -------
    LocalExecutor or RayExecutor
        Not yet started: use it in a ``with`` block.

    Raises
    ------
    ConfigError
        If ``name`` is not one of :data:`EXECUTORS`, ``workers`` is not an int >= 1, an
        ``address`` is given to ``local``, or ``ray`` is asked for without Ray installed.

    Examples
    --------
    >>> make_executor("local", workers=2)
    LocalExecutor(workers=2)
    """
    if name == "local":
        if address is not None:
            raise ConfigError(f"executor 'local' takes no address, got {address!r}")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address=address, workers=workers)
    raise ConfigError(f"unknown executor {name!r}; expected one of {list(EXECUTORS)}")
