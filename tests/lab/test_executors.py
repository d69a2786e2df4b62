"""Executors: the same ordered results in process, in a process pool and on a local Ray."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import ray

from volguard.errors import ConfigError
from volguard.lab.executors import (
    EXECUTORS,
    LocalExecutor,
    RayExecutor,
    make_executor,
)

ARGS = [(seed, n) for seed, n in [(0, 3), (1, 5), (2, 4), (3, 2), (4, 6), (5, 1)]]


def seeded_frame(seed: int, n: int) -> pd.DataFrame:
    """A small seeded computation: ``n`` standard normals and their running sum."""
    x = np.random.default_rng(seed).standard_normal(n)
    return pd.DataFrame({"seed": seed, "x": x, "cum": np.cumsum(x)})


def slow_first(i: int, delay_s: float) -> tuple[int, float]:
    """Return ``i`` and when it finished; task 0 sleeps ``delay_s`` so it finishes last."""
    if i == 0:
        time.sleep(delay_s)
    return i, time.time()


def fail_on(i: int, bad: int) -> int:
    if i == bad:
        raise ValueError(f"task {i} failed")
    return i


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    """One local Ray with two CPUs for the whole module (starting it takes seconds)."""
    with RayExecutor(workers=2) as ex:
        yield ex


def expected() -> list[pd.DataFrame]:
    return [seeded_frame(*a) for a in ARGS]


@pytest.mark.parametrize("workers", [1, 2])
def test_local_matches_plain_loop(workers: int) -> None:
    with LocalExecutor(workers) as ex:
        got = list(ex.map(seeded_frame, ARGS))
    assert len(got) == len(ARGS)
    for g, e in zip(got, expected(), strict=True):
        pd.testing.assert_frame_equal(g, e)


def test_ray_matches_plain_loop(ray_executor: RayExecutor) -> None:
    got = list(ray_executor.map(seeded_frame, ARGS))
    assert [int(g["seed"].iloc[0]) for g in got] == [seed for seed, _ in ARGS]
    for g, e in zip(got, expected(), strict=True):
        pd.testing.assert_frame_equal(g, e)


def test_pool_keeps_order_when_first_task_is_slowest() -> None:
    args = [(i, 0.5) for i in range(4)]
    with LocalExecutor(2) as ex:
        got = list(ex.map(slow_first, args))
    assert [i for i, _ in got] == [0, 1, 2, 3]
    # the check means something only if task 0 really did finish after another task
    assert got[0][1] > min(t for _, t in got[1:])


def test_ray_keeps_order_when_first_task_is_slowest(ray_executor: RayExecutor) -> None:
    args = [(i, 0.5) for i in range(4)]
    got = list(ray_executor.map(slow_first, args))
    assert [i for i, _ in got] == [0, 1, 2, 3]
    assert got[0][1] > min(t for _, t in got[1:])


def test_single_task_and_empty_run_in_process() -> None:
    with LocalExecutor(2) as ex:
        assert list(ex.map(seeded_frame, [])) == []
        (only,) = ex.map(seeded_frame, [(7, 2)])
        assert ex._pool is None
    pd.testing.assert_frame_equal(only, seeded_frame(7, 2))


def test_task_error_reaches_the_caller(ray_executor: RayExecutor) -> None:
    args = [(i, 2) for i in range(4)]
    with LocalExecutor(2) as ex, pytest.raises(ValueError, match="task 2 failed"):
        list(ex.map(fail_on, args))
    with pytest.raises(ValueError, match="task 2 failed"):
        list(ray_executor.map(fail_on, args))


def test_ray_executor_reuses_a_running_ray(ray_executor: RayExecutor) -> None:
    # Ray is up (the fixture started it): a second executor uses it and leaves it running
    with RayExecutor(workers=2) as other:
        assert list(other.map(fail_on, [(1, 0), (2, 0)])) == [1, 2]
    assert ray.is_initialized()


def test_make_executor() -> None:
    assert EXECUTORS == ("local", "ray")
    local = make_executor("local", workers=3)
    assert isinstance(local, LocalExecutor)
    assert local.workers == 3
    remote = make_executor("ray", workers=2, address="auto")
    assert isinstance(remote, RayExecutor)
    assert (remote.address, remote.workers) == ("auto", 2)


def test_unknown_executor_name() -> None:
    with pytest.raises(ConfigError, match=r"'dask'.*\['local', 'ray'\]"):
        make_executor("dask")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_workers(workers: object) -> None:
    with pytest.raises(ConfigError, match="workers"):
        LocalExecutor(workers)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        make_executor("ray", workers=workers)  # type: ignore[arg-type]


def test_local_takes_no_address() -> None:
    with pytest.raises(ConfigError, match="address"):
        make_executor("local", address="auto")


def test_ray_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'volguard\[ray\]'"):
        make_executor("ray", workers=2)
