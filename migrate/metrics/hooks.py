"""The calls the mirror engine makes into metrics, and the do-nothing default.

The engine calls these at a handful of points (see `migrate/mirror/`, lines marked
`metrics:`), never per record: once at start and stop, once per loop turn (`tick`, a flag
test unless a scrape is waiting), once per commit, retry and end-of-partition; the config sync
(migrate.mirror.configsync) calls its two from its own thread, once per change and per round.
With metrics off the engine holds a `NoMetrics`, so none of this costs anything.
"""

from __future__ import annotations


class NoMetrics:
    """The engine's metrics when none are served."""

    def attach(self, mirror: str, worker: str, take) -> None:
        """The engine's loop is about to start; `take()` returns a migrate.mirror.snapshot.Snapshot
        (called only from `tick`, in the engine's thread)."""

    def tick(self) -> None:
        """One turn of the engine's loop (the only place a scrape may read the engine's state)."""

    def committed(self, key: tuple[str, int], writer) -> None:
        """`writer` committed a transaction of `key`; its map has grown."""

    def retry(self, key: tuple[str, int], reason: str) -> None:
        """`key` failed and will be opened again after a backoff."""

    def reached_end(self, key: tuple[str, int], writer) -> None:
        """The source consumer reported end-of-partition for `key`, mirrored by `writer`."""

    def throttling(self, figures) -> None:
        """Under --max-bytes-per-second: `figures()` returns a migrate.mirror.throttle.Figures, read at scrape time."""

    def config_changed(self, topic: str, key: str, outcome: str) -> None:
        """The config sync (its own thread) applied, restored, or was refused a change of `key`."""

    def config_drift(self, drift: tuple) -> None:
        """The config sync's round ended (its own thread): `drift` is every migrate.mirror.configs.Drift left."""

    def detach(self) -> None:
        """The engine's loop has ended."""


NO_METRICS = NoMetrics()
