"""Independent jobs on local processes or on a Dask distributed cluster.

`map_jobs(fn, items, jobs=J)` runs ``fn(item)`` for every item in a local process pool
(``J`` processes; ``J == 1`` runs in this process); with ``cluster="tcp://HOST:PORT"``
it sends them to that Dask scheduler instead (``pip install 'macforge[cluster]'``;
workers started from the same venv, so they import the same macforge). Either way the
results come back in the order of ``items``, and ``progress(done, total, index, result)``
is called as each one finishes. ``fn`` must be a module-level function and items
picklable. No job server of our own: the pool is `concurrent.futures`, the cluster is
Dask's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["ClusterError", "check_cluster_address", "connect", "map_jobs"]

_ADDRESS = re.compile(r"^tcp://[A-Za-z0-9.\-]+:(\d{1,5})$")

#: Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT = 10


class ClusterError(RuntimeError):
    """The cluster cannot be used: bad address, Dask missing, scheduler unreachable."""


def check_cluster_address(address: str) -> str:
    """``address`` if it has the form ``tcp://HOST:PORT`` (PORT 1..65535)."""
    m = _ADDRESS.match(address or "")
    if not m or not 1 <= int(m.group(1)) <= 65535:
        raise ClusterError(f"cluster address {address!r} is not of the form tcp://HOST:PORT")
    return address


def connect(address: str):
    """A `distributed.Client` on the scheduler at ``address`` (checked first)."""
    check_cluster_address(address)
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install 'macforge[cluster]'"
        ) from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({exc})") from None


Progress = Callable[[int, int, int, Any], None]


def map_jobs(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    jobs: int = 1,
    cluster: str | None = None,
    client=None,
    progress: Progress | None = None,
) -> list[Any]:
    """``[fn(item) for item in items]`` on ``jobs`` local processes, or on the Dask
    cluster at ``cluster`` (or an already connected ``client``); results in item order.
    An exception in a job propagates (the remaining jobs are cancelled)."""
    items = list(items)
    results: list[Any] = [None] * len(items)
    done = 0

    def finished(index: int, value: Any) -> None:
        nonlocal done
        results[index] = value
        done += 1
        if progress:
            progress(done, len(items), index, value)

    if cluster is not None or client is not None:
        own = client is None
        client = client or connect(cluster)
        try:
            from distributed import as_completed as dask_completed

            futures = client.map(fn, items, pure=False)
            index = {f.key: i for i, f in enumerate(futures)}
            try:
                for future in dask_completed(futures, loop=client.loop):
                    finished(index[future.key], future.result())
            except BaseException:
                client.cancel(futures)
                raise
        finally:
            if own:
                client.close()
        return results
    if jobs <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            finished(i, fn(item))
        return results
    with ProcessPoolExecutor(max_workers=min(jobs, len(items))) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                finished(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results
