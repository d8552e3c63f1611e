"""Where a split backtest runs: local worker processes (``--jobs``) or a Dask cluster (``--dask``).

Local workers come from a ``forkserver``: a fresh interpreter that imports
the backtest once (numba, numpy, arrow: most of a second) and then forks
each worker from itself in milliseconds, so N workers do not import N
times. ``fork`` of the command itself would copy a parent that may already
run threads (arrow's and numba's pools), which can deadlock a child; plain
``spawn`` (the fallback where there is no forkserver) makes each worker
import everything again. The workers start while the watchlists load.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from breakoutd.backtest.coverage import span_warnings
from breakoutd.backtest.days import tape_files
from breakoutd.backtest.engine import BacktestError, BacktestResult, limits_set
from breakoutd.backtest.jobs import (
    TapeIndex,
    backtest_results,
    day_results,
    enabled_in_order,
    index_file,
    plan_units,
    risk_days,
    run_risk_day,
    run_unit,
    sessions_back_to_prior,
)
from breakoutd.calendar import given_sessions
from breakoutd.core.params import RiskLimits, WatcherSpec
from breakoutd.tape import read_tapes

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")


class Runner(Protocol):
    """Runs a function over items elsewhere and gives the results in the items' order."""

    @property
    def workers(self) -> int:
        """How many units run at once."""
        ...

    def run(self, fn: Callable[[T], R], items: Sequence[T], first: Sequence[int] | None = None,
            done: Callable[[int], None] | None = None) -> list[R]:
        """``fn`` over ``items``, sent in the order ``first`` gives (default: as given);
        ``done(k)`` as item k finishes. The first item's error in item order is raised."""
        ...

    def run_shared(self, fn: Callable[[T, S], R], items: Sequence[T], shared: S,
                   first: Sequence[int] | None = None,
                   done: Callable[[int], None] | None = None) -> list[R]:
        """As :meth:`run`, calling ``fn(item, shared)``: ``shared`` goes to each worker
        once, not with every item."""
        ...

    def close(self) -> None:
        """Stop the workers (or leave the cluster)."""
        ...


_PRELOAD = ["breakoutd.backtest.preload"]


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # A worker runs the parent's main module again (as __mp_main__): preloaded, its
    # imports are done once too.
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    main = getattr(spec, "name", None)
    extra = [main] if main and not main.endswith("__main__") else []
    ctx.set_forkserver_preload(extra + _PRELOAD)
    return ctx


def _warm_up() -> None:
    """Have a worker ready (the calendar and the compiled reader loaded; the forkserver's
    preload did it once, spawn makes each do it) while the parent loads the watchlists."""
    import breakoutd.backtest.preload  # noqa: F401


@functools.lru_cache(maxsize=2)
def _shared(path: str) -> Any:
    """What the parent shared in the file at ``path``, read once by each worker (each
    :meth:`ProcessRunner.run_shared` writes a file of its own, never rewritten)."""
    with open(path, "rb") as f:
        return pickle.load(f)


def _call_shared(fn: Callable[[T, S], R], path: str, item: T) -> R:
    return fn(item, _shared(path))


def _in_item_order(n: int, finished: Iterable[tuple[int, BaseException | None, Callable[[], Any]]],
                   done: Callable[[int], None] | None) -> list[Any]:
    """The results of ``n`` items as ``(k, error, result)`` come in, in the items' order;
    ``done(k)`` as item k succeeds. The first item's error in item order is raised, once
    all have finished, so which error a run reports does not depend on the workers' speed."""
    out: list[Any] = [None] * n
    errors: dict[int, BaseException] = {}
    for k, exc, result in finished:
        if exc is not None:
            errors[k] = exc
            continue
        out[k] = result()
        if done is not None:
            done(k)
    if errors:
        raise errors[min(errors)]
    return out


class ProcessRunner:
    """``--jobs N``: N local worker processes."""

    def __init__(self, jobs: int) -> None:
        self.workers = jobs
        self._pool = ProcessPoolExecutor(jobs, mp_context=_context())
        self._dir: tempfile.TemporaryDirectory[str] | None = None  # run_shared's files
        self._shares = 0
        # Starting a worker waits for the forkserver's imports: in a thread, so the
        # parent meanwhile loads the watchlists and the calendar.
        self._starting = threading.Thread(target=self._start, args=(jobs,), daemon=True)
        self._starting.start()

    def _start(self, jobs: int) -> None:
        for _ in range(jobs):  # each submit starts a worker while none is idle
            self._pool.submit(_warm_up)

    def run_shared(self, fn: Callable[[T, S], R], items: Sequence[T], shared: S,
                   first: Sequence[int] | None = None,
                   done: Callable[[int], None] | None = None) -> list[R]:
        """See :class:`Runner`: ``shared`` is written to a file of this runner's, which
        each worker reads once (a worker's items do not carry it)."""
        try:
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="breakoutd-jobs-")
            self._shares += 1
            path = os.path.join(self._dir.name, f"shared-{self._shares}.pickle")
            with open(path, "wb") as f:
                pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:  # not a tape's error: say whose file it is
            where = exc.filename if exc.filename is not None else tempfile.gettempdir()
            raise BacktestError(f"--jobs: cannot write the watchers for the workers in "
                                f"{where}: {exc.strerror or exc} (TMPDIR sets where)") from exc
        return self.run(functools.partial(_call_shared, fn, path), items, first, done)

    def run(self, fn: Callable[[T], R], items: Sequence[T], first: Sequence[int] | None = None,
            done: Callable[[int], None] | None = None) -> list[R]:
        """See :class:`Runner`."""
        self._starting.join()
        order = range(len(items)) if first is None else first
        futures: dict[Future[R], int] = {self._pool.submit(fn, items[k]): k for k in order}

        def finished() -> Iterator[tuple[int, BaseException | None, Callable[[], R]]]:
            for f in as_completed(futures):
                exc = f.exception()
                if isinstance(exc, BrokenProcessPool):
                    raise BacktestError("a worker process ended abruptly (out of memory?)"
                                        ) from exc
                yield futures[f], exc, f.result
        return _in_item_order(len(items), finished(), done)

    def close(self) -> None:
        """See :class:`Runner`."""
        self._starting.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._dir is not None:
            self._dir.cleanup()


class DaskRunner:
    """``--dask ADDRESS``: the workers of a running Dask scheduler.

    They must import this same breakoutd and read the tapes at the paths
    given (a shared file system), since units carry paths, not rows."""

    def __init__(self, address: str) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise BacktestError("--dask needs dask.distributed: pip install 'breakoutd[dask]'"
                                ) from exc
        self._distributed = distributed
        try:
            self._client = distributed.Client(  # type: ignore[no-untyped-call]
                address, timeout=10, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BacktestError(f"--dask {address}: cannot reach the scheduler ({exc})") from exc

    @property
    def workers(self) -> int:
        """The cluster's threads, now."""
        return max(1, sum(self._client.nthreads().values()))  # type: ignore[no-untyped-call]

    def run(self, fn: Callable[[T], R], items: Sequence[T], first: Sequence[int] | None = None,
            done: Callable[[int], None] | None = None) -> list[R]:
        """See :class:`Runner`."""
        return self._run(fn, items, (), first, done)

    def run_shared(self, fn: Callable[[T, S], R], items: Sequence[T], shared: S,
                   first: Sequence[int] | None = None,
                   done: Callable[[int], None] | None = None) -> list[R]:
        """See :class:`Runner`: ``shared`` is scattered to every worker, and each task
        names it (the cluster hands it to a worker that joins later too)."""
        [handle] = self._client.scatter(  # type: ignore[no-untyped-call]
            [shared], broadcast=True, hash=False)
        return self._run(fn, items, (handle,), first, done)

    def _run(self, fn: Callable[..., R], items: Sequence[T], extra: tuple[Any, ...],
             first: Sequence[int] | None, done: Callable[[int], None] | None) -> list[R]:
        order = list(range(len(items)) if first is None else first)
        key_of: dict[object, int] = {}
        futures = []
        for rank, k in enumerate(order):  # a higher priority runs first
            f = self._client.submit(fn, items[k], *extra, pure=False,
                                    priority=len(order) - rank)
            key_of[f.key] = k
            futures.append(f)
        done_in_turn = self._distributed.as_completed(  # type: ignore[no-untyped-call]
            futures, loop=self._client.loop)
        finished = ((key_of[f.key], f.exception() if f.status == "error" else None, f.result)
                    for f in done_in_turn)
        return _in_item_order(len(items), finished, done)

    def close(self) -> None:
        """See :class:`Runner`."""
        self._client.close()  # type: ignore[no-untyped-call]


def _index(runner: Runner, paths: Iterable[str | os.PathLike[str]]) -> TapeIndex:
    files = [os.fspath(p) for p in tape_files(paths)]
    index = TapeIndex(runner.run(index_file, files))
    if index.files_overlap():  # only the files together can say which row is twice
        read_tapes(files)
    return index


def run_backtest_jobs(
    runner: Runner,
    tapes: Sequence[str | os.PathLike[str]],
    watchers: Sequence[WatcherSpec],
    risk: RiskLimits | None = None,
    *,
    prior: Sequence[str | os.PathLike[str]] | None = None,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[BacktestResult]:
    """What :func:`breakoutd.backtest.days.run_backtest_days` gives for these tape files,
    computed by ``runner``'s workers; ``warn`` gets the coverage warnings first."""
    index = _index(runner, tapes)
    # The calendar costs a second to load: a worker has it, the parent takes its answers.
    for sessions in runner.run(sessions_back_to_prior, index.days):
        given_sessions(sessions)
    for day in index.days:
        for warning in span_warnings(index.day_spans(day), watchers):
            if warn is not None:
                warn(warning if len(index.days) == 1 else f"{day}: {warning}")
    prior_index = _index(runner, prior) if prior else None
    units = plan_units(index, prior_index, watchers, runner.workers)
    specs = enabled_in_order(watchers)
    total = len(specs) * len(index.days)
    finished = 0

    def step(k: int) -> None:
        nonlocal finished
        finished += len(units[k].positions)
        if progress is not None:
            progress(finished, total)

    biggest_first = sorted(range(len(units)), key=lambda k: -units[k].cost)
    done = runner.run_shared(run_unit, units, specs, biggest_first, step)
    by_day = day_results(index, units, done, specs)
    if not limits_set(risk):
        return backtest_results(index, by_day)
    assert risk is not None
    # The day ledger couples the day's symbols: its replay runs per whole day, after them, in
    # this process. It is a few per cent of the units' work; sending a day's results to a
    # worker and back cost several times the replay (3.3 s against 0.5 s for five days of
    # 8,000 watchers).
    days = risk_days(index, by_day, risk)
    limited = [run_risk_day(d) for d in days]
    by_day = {d.today.day: results for d, (results, _) in zip(days, limited, strict=True)}
    replays = {d.today.day: replay for d, (_, replay) in zip(days, limited, strict=True)}
    return backtest_results(index, by_day, replays)
