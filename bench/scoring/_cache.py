"""A score cache in any SQL database SQLAlchemy reaches: SQLite on one machine, PostgreSQL across many.

"Score once, query many": a score is looked up before it is computed. With several workers, a worker
first *claims* a key (an insert that only one worker can win); the others wait for its result, and a
claim whose worker stopped heart-beating is taken over, so no score is computed twice and none is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..databases import database_url
from ..processes import pid_alive
from ._records import TRANSIENT, ScoreRecord, known_version, score_key

RUNNING = "running"
_metadata = sa.MetaData()
# Format 2: keys hold the device type, the precision and the proxy's version. A database of the first
# format keeps its old table, which nothing reads.
_scores = sa.Table(
    "bench_scores_v2",
    _metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("config", sa.String(16), nullable=False, index=True),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("idx", sa.Integer, nullable=True),
    sa.Column("proxy", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),  # the proxy's version; None for keys of other work
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(80), nullable=False, default=""),
    sa.Column("updated", sa.Float, nullable=False),
)

# What each config key stands for (its fields as JSON), so a score can be exported with its settings.
_configs = sa.Table(
    "bench_configs",
    _metadata,
    sa.Column("config", sa.String(16), primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
)


class CacheUnavailableError(ValueError):
    """The score cache's database cannot be opened; the message names the URL, why, and what to do."""

    def __init__(self, url: str, err: BaseException) -> None:
        detail = str(getattr(err, "orig", None) or err).strip().splitlines()
        reason = detail[0] if detail else type(err).__name__
        if "file is not a database" in reason:
            hint = "the file is damaged or not an SQLite database: move it aside (its scores are lost) or pass another"
        elif isinstance(err, OSError) or "unable to open database file" in reason or "readonly" in reason:
            hint = "its folder must exist or be creatable, and be writable: fix that or pass another"
        else:
            hint = "check the URL and that the database server runs and is reachable, or pass another"
        shown = sa.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else url
        super().__init__(f"cannot open the score cache {shown} ({reason}); {hint} --cache URL")


def _open(url: str) -> sa.engine.Engine:
    """An engine on ``url`` with the cache's tables, created where missing."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            check_sqlite_file(path)
    connect_args = {"timeout": 60} if url.startswith("sqlite") else {}
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": 10}
    engine = sa.create_engine(url, connect_args=connect_args)
    if url.startswith("sqlite"):
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    try:
        _metadata.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        # Workers starting together race to create the table; the loser finds it made.
        if not sa.inspect(engine).has_table(_scores.name):
            raise
    return engine


class ScoreCache:
    """Scores keyed by (config, arch, proxy) in a SQL database at ``url``.

    ``stale_after`` seconds without completion make a claim free to take over.
    """

    def __init__(self, url: str, *, stale_after: float = 600.0) -> None:
        if "://" not in url:
            raise ValueError(f"score cache URL {url!r} is not a database URL (e.g. sqlite:///results/scores.db)")
        url = database_url(url)
        self.url = url
        try:
            self.engine = _open(url)
        except (OSError, sa.exc.SQLAlchemyError) as err:
            if url.startswith("sqlite:///") and _DAMAGED in str(getattr(err, "orig", err)):
                raise DamagedCacheError(url.removeprefix("sqlite:///")) from None
            raise CacheUnavailableError(url, err) from None
        self.stale_after = stale_after
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def register_config(self, config: str, fields: dict) -> None:
        """Record what the config key ``config`` stands for (once; later calls with the same key are no-ops)."""
        insert = self._insert_into(_configs)
        row = {"config": config, "fields": json.dumps(fields, sort_keys=True)}
        with self.engine.begin() as conn:
            if insert is not None:
                conn.execute(insert.values(**row).on_conflict_do_nothing(index_elements=["config"]))
            elif conn.execute(sa.select(_configs.c.config).where(_configs.c.config == config)).first() is None:
                conn.execute(sa.insert(_configs).values(**row))

    def configs(self) -> dict[str, dict]:
        """Every registered config key with its fields."""
        with self.engine.connect() as conn:
            return {row.config: json.loads(row.fields) for row in conn.execute(sa.select(_configs))}

    def add_many(self, records: list[ScoreRecord], *, owner: str, chunk: int = 5000) -> int:
        """Insert finished records whose keys the cache does not hold yet (the ones it holds are kept, running
        claims included); the number inserted."""
        insert = self._insert()
        configs = sorted({r.config for r in records})
        before = sum(self.count(c) for c in configs)
        with self.engine.begin() as conn:
            for start in range(0, len(records), chunk):
                rows = [{**_row(r.config, r.arch, r.proxy, r.index, owner, r)} for r in records[start : start + chunk]]
                if insert is not None:
                    conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]), rows)
                else:
                    present = {k for (k,) in conn.execute(sa.select(_scores.c.key).where(
                        _scores.c.key.in_([r["key"] for r in rows])))}  # fmt: skip
                    fresh = [r for r in rows if r["key"] not in present]
                    if fresh:
                        conn.execute(sa.insert(_scores), fresh)
        return sum(self.count(c) for c in configs) - before

    def owner_hosts(self, configs: list[str]) -> set[str]:
        """The hosts of the workers that stored the finished scores of ``configs``."""
        finished = (_scores.c.config.in_(configs), _scores.c.status != RUNNING)
        query = sa.select(_scores.c.owner).where(*finished).distinct()
        with self.engine.connect() as conn:
            return {str(owner).partition(":")[0] for (owner,) in conn.execute(query)}

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
        row = _row(config, arch, proxy, index, self.owner)
        key, now = row["key"], row["updated"]
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
            if current is None or current.status != RUNNING or not self._stale(current.owner, current.updated, now):
                return False
            taken = conn.execute(
                sa.update(_scores)
                .where(_scores.c.key == key, _scores.c.owner == current.owner, _scores.c.status == RUNNING)
                .values(owner=self.owner, updated=now)
            )
            return taken.rowcount == 1

    def _insert(self):
        """The dialect's INSERT into the scores with ON CONFLICT support (SQLite and PostgreSQL), or None."""
        return self._insert_into(_scores)

    def _insert_into(self, table: sa.Table):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.engine.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            return None
        return insert(table)

    def claim_many(self, config: str, items: list[tuple[str, str, int | None]]) -> set[tuple[str, str]]:
        """Claim many (arch, proxy, index) keys in one transaction; returns the (arch, proxy) pairs won.

        Keys held by another worker are not won here, even when stale: :meth:`claim` takes those over.
        """
        insert = self._insert()
        if insert is None:
            return {(a, p) for a, p, i in items if self.claim(config, a, p, i)}
        rows = [_row(config, a, p, i, self.owner) for a, p, i in items]
        if not rows:
            return set()
        with self.engine.begin() as conn:
            won = conn.execute(insert.on_conflict_do_nothing(index_elements=["key"]).returning(_scores.c.key), rows)
            keys = {row.key for row in won}
        return {(r["arch"], r["proxy"]) for r in rows if r["key"] in keys}

    def put_many(self, records: list[ScoreRecord]) -> None:
        """Store many finished records in one transaction; a transient failure only gives its claim back."""
        for record in (r for r in records if r.status == TRANSIENT):
            self.release(record.config, record.arch, record.proxy)
        records = [r for r in records if r.status != TRANSIENT]
        insert = self._insert()
        if insert is None:
            for record in records:
                self.put(record)
            return
        rows = [_row(r.config, r.arch, r.proxy, r.index, self.owner, r) for r in records]
        if not rows:
            return
        updates = {
            c: insert.excluded[c] for c in ("score", "seconds", "status", "error", "owner", "updated", "idx", "version")
        }
        with self.engine.begin() as conn:
            conn.execute(insert.on_conflict_do_update(index_elements=["key"], set_=updates), rows)

    def put(self, record: ScoreRecord) -> None:
        """Store a finished record (replacing this worker's claim, if any); a transient failure is not kept:
        its claim is given back, so that the next run computes the score again."""
        if record.status == TRANSIENT:
            self.release(record.config, record.arch, record.proxy)
            return
        values = _row(record.config, record.arch, record.proxy, record.index, self.owner, record)
        key = values.pop("key")
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(_scores).where(_scores.c.key == key).values(**values))
            if updated.rowcount == 0:
                # A concurrent writer may have stored the same score first; both are equal.
                with contextlib.suppress(IntegrityError):
                    conn.execute(sa.insert(_scores).values(key=key, **values))

    def touch(self, config: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Renew this worker's claims on (arch, proxy) pairs: a heartbeat for work that outlasts ``stale_after``."""
        keys = [score_key(config, a, p) for a, p in pairs]
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(_scores)
                .where(_scores.c.key.in_(keys), _scores.c.owner == self.owner, _scores.c.status == RUNNING)
                .values(updated=time.time())
            )

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
            if self._stale(row["owner"], row["updated"], time.time()):
                return None
            time.sleep(poll)

    def _stale(self, owner: str, updated: float, now: float) -> bool:
        """A claim is stale after ``stale_after`` seconds, or at once when its worker's process has died."""
        return now - updated >= self.stale_after or _owner_dead(owner)

    def count(self, config: str) -> int:
        """Finished records of one config."""
        query = (
            sa.select(sa.func.count())
            .select_from(_scores)
            .where(_scores.c.config == config, _scores.c.status != RUNNING)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def records(self, config: str | None = None) -> list[ScoreRecord]:
        query = sa.select(_scores).where(_scores.c.status != RUNNING)
        if config is not None:
            query = query.where(_scores.c.config == config)
        with self.engine.connect() as conn:
            return [_to_record(row) for row in conn.execute(query).mappings()]


def _owner_dead(owner: str) -> bool:
    """Whether ``owner`` (host:pid:tag) is a process of this machine that no longer exists (e.g. killed)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: only its silence (``stale_after``) tells
    return not pid_alive(int(pid))  # a zombie, killed but not yet reaped, is dead


_SQLITE_HEADER = b"SQLite format 3\x00"
#: What SQLite says of a file whose header it reads but whose pages are damaged.
_DAMAGED = "database disk image is malformed"


def _not_sqlite(path: str) -> str:
    return (
        f"score cache {path} is not a readable SQLite database (file is not a database: damaged, or another kind "
        "of file): move it aside to start an empty cache there, or pass --cache with another file"
    )


class DamagedCacheError(CacheUnavailableError):
    """The score cache's file is there but is no SQLite database, or a damaged one."""

    def __init__(self, path: str) -> None:
        ValueError.__init__(self, _not_sqlite(path))


def check_sqlite_file(path: str) -> None:
    """A ValueError in one line, naming the file and what to do, when ``path`` exists but is no SQLite database
    (SQLite would say only "file is not a database", at the first query)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise ValueError(f"score cache {path} is a folder, not a SQLite file; pass --cache sqlite:///FILE") from None
    if head and head != _SQLITE_HEADER:
        raise DamagedCacheError(path)


def _row(config: str, arch: str, proxy: str, index: int | None, owner: str, record: ScoreRecord | None = None) -> dict:
    """A table row: a claim (no record yet) or a finished record."""
    return {
        "key": score_key(config, arch, proxy),
        "config": config,
        "arch": arch,
        "idx": index,
        "proxy": proxy,
        "version": known_version(proxy),
        "score": record.score if record else None,
        "seconds": record.seconds if record else 0.0,
        "status": record.status if record else RUNNING,
        "error": record.error if record else "",
        "owner": owner,
        "updated": time.time(),
    }


def _to_record(row) -> ScoreRecord:
    return ScoreRecord(
        arch=row["arch"], proxy=row["proxy"], score=row["score"], seconds=row["seconds"], status=row["status"],
        error=row["error"], index=row["idx"], config=row["config"], cached=True,
    )  # fmt: skip
