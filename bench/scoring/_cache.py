"""A score cache in any SQL database SQLAlchemy reaches: SQLite on one machine, PostgreSQL across many.

"Score once, query many": a score is looked up before it is computed. With several workers, a worker
first *claims* a key (an insert that only one worker can win); the others wait for its result, and a
claim whose worker stopped heart-beating is taken over, so no score is computed twice and none is lost.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ._records import ScoreRecord, score_key

RUNNING = "running"
_metadata = sa.MetaData()
_scores = sa.Table(
    "bench_scores",
    _metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("config", sa.String(16), nullable=False, index=True),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("idx", sa.Integer, nullable=True),
    sa.Column("proxy", sa.String(64), nullable=False),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(80), nullable=False, default=""),
    sa.Column("updated", sa.Float, nullable=False),
)


class ScoreCache:
    """Scores keyed by (config, arch, proxy) in a SQL database at ``url``.

    ``stale_after`` seconds without completion make a claim free to take over.
    """

    def __init__(self, url: str, *, stale_after: float = 600.0) -> None:
        if "://" not in url:
            raise ValueError(f"score cache URL {url!r} is not a database URL (e.g. sqlite:///results/scores.db)")
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        connect_args = {"timeout": 60} if url.startswith("sqlite") else {}
        self.url = url
        self.engine = sa.create_engine(url, connect_args=connect_args)
        if url.startswith("sqlite"):
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        _metadata.create_all(self.engine, checkfirst=True)
        self.stale_after = stale_after
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def get_many(self, config: str, archs: Iterable[str], proxies: Iterable[str]) -> dict[tuple[str, str], ScoreRecord]:
        """Completed records among the given (arch, proxy) pairs, keyed by that pair."""
        keys = {score_key(config, a, p): (a, p) for a in archs for p in proxies}
        found: dict[tuple[str, str], ScoreRecord] = {}
        key_list = list(keys)
        with self.engine.connect() as conn:
            for start in range(0, len(key_list), 500):
                chunk = key_list[start : start + 500]
                rows = conn.execute(
                    sa.select(_scores).where(_scores.c.key.in_(chunk), _scores.c.status != RUNNING)
                ).mappings()
                for row in rows:
                    found[keys[row["key"]]] = _to_record(row)
        return found

    def get(self, config: str, arch: str, proxy: str) -> ScoreRecord | None:
        return self.get_many(config, [arch], [proxy]).get((arch, proxy))

    def claim(self, config: str, arch: str, proxy: str, index: int | None = None) -> bool:
        """Reserve a key for this worker; False if another live worker holds it or it is done."""
        key = score_key(config, arch, proxy)
        now = time.time()
        row = dict(
            key=key, config=config, arch=arch, idx=index, proxy=proxy, score=None, seconds=0.0,
            status=RUNNING, error="", owner=self.owner, updated=now,
        )  # fmt: skip
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(_scores).values(**row))
            return True
        except IntegrityError:
            pass
        # Take over a stale claim: only one worker's conditional update can match the old owner.
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(_scores.c.status, _scores.c.owner, _scores.c.updated).where(
                _scores.c.key == key)).first()  # fmt: skip
            if current is None or current.status != RUNNING or now - current.updated < self.stale_after:
                return False
            taken = conn.execute(
                sa.update(_scores)
                .where(_scores.c.key == key, _scores.c.owner == current.owner, _scores.c.status == RUNNING)
                .values(owner=self.owner, updated=now)
            )
            return taken.rowcount == 1

    def put(self, record: ScoreRecord) -> None:
        """Store a finished record (replacing this worker's claim, if any)."""
        key = score_key(record.config, record.arch, record.proxy)
        values = dict(
            config=record.config, arch=record.arch, idx=record.index, proxy=record.proxy, score=record.score,
            seconds=record.seconds, status=record.status, error=record.error, owner=self.owner, updated=time.time(),
        )  # fmt: skip
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(_scores).where(_scores.c.key == key).values(**values))
            if updated.rowcount == 0:
                # A concurrent writer may have stored the same score first; both are equal.
                with contextlib.suppress(IntegrityError):
                    conn.execute(sa.insert(_scores).values(key=key, **values))

    def release(self, config: str, arch: str, proxy: str) -> None:
        """Drop this worker's unfinished claim (e.g. when it is interrupted)."""
        key = score_key(config, arch, proxy)
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(_scores).where(
                    _scores.c.key == key, _scores.c.owner == self.owner, _scores.c.status == RUNNING
                )
            )

    def wait(self, config: str, arch: str, proxy: str, *, poll: float = 0.2) -> ScoreRecord | None:
        """Wait for another worker's claimed score; None once the claim is stale or released."""
        key = score_key(config, arch, proxy)
        while True:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(_scores).where(_scores.c.key == key)).mappings().first()
            if row is None:
                return None
            if row["status"] != RUNNING:
                return _to_record(row)
            if time.time() - row["updated"] >= self.stale_after:
                return None
            time.sleep(poll)

    def records(self, config: str | None = None) -> list[ScoreRecord]:
        query = sa.select(_scores).where(_scores.c.status != RUNNING)
        if config is not None:
            query = query.where(_scores.c.config == config)
        with self.engine.connect() as conn:
            return [_to_record(row) for row in conn.execute(query).mappings()]


def _to_record(row) -> ScoreRecord:
    return ScoreRecord(
        arch=row["arch"], proxy=row["proxy"], score=row["score"], seconds=row["seconds"], status=row["status"],
        error=row["error"], index=row["idx"], config=row["config"], cached=True,
    )  # fmt: skip
