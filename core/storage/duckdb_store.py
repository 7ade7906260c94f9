"""DuckDB implementation of :class:`core.storage.base.Storage`.

One engine process owns the file.  Writes come from the engine's single commit
thread through :meth:`DuckDBStorage.apply`; reads use their own cursors so they
never wait behind a group commit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

# DuckDB's Python binding tries `import pandas` for every bound parameter when
# pandas is absent, and a failed import is not cached: ~30 us per value on a
# search of sys.path.  Recording the absence up front makes each attempt fail
# at once.  Only when pandas really is not installed.
if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
    sys.modules["pandas"] = None  # type: ignore[assignment]

import contextlib

import duckdb  # noqa: E402

from core.config import env
from core.errors import BadRequest, StorageError
from core.quotas import PERIODS, window_start
from core.storage.base import (
    APPEND_ONLY,
    AuditQuery,
    Delete,
    Insert,
    Mutation,
    Snapshot,
    Update,
    WriteRejected,
)

TS_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
# DuckDB's buffer pool: by default 80 % of RAM, and it keeps every table block it ever held
# until that fills, so the engine's memory grew with the size of its tables.  The engine's
# queries stream or aggregate (and DuckDB spills to disk when it must), so a small pool is
# enough.  MUSUBI_DB_MEMORY_LIMIT (a DuckDB size, e.g. "256MB") overrides it.
DEFAULT_MEMORY_LIMIT = "64MB"
# Rows committed since DuckDB's last checkpoint live in memory as well as in its WAL; it
# checkpoints on its own once the WAL passes this (DuckDB's default is 16 MB).  Smaller keeps
# the engine's memory steadier at no measurable cost in throughput (bench_memory.py).
CHECKPOINT_THRESHOLD = "8MB"
# prev_hash + "\n" + the canonical JSON C of core.audit.canonical_event, built in SQL.
_PIECE_SQL = (
    "prev_hash || chr(10) || '{\"action\":' || to_json(action) || ',\"actor\":' || to_json(actor) "
    "|| ',\"details\":' || CAST(details AS VARCHAR) || ',\"outcome\":' || to_json(outcome) "
    "|| ',\"resource\":' || to_json(resource) || ',\"seq\":' || CAST(seq AS VARCHAR) "
    "|| ',\"tenant_id\":' || to_json(tenant_id) || ',\"ts\":\"' || strftime(ts, '" + TS_FMT + "') || '\"}'"
)
_JSON_TYPES = {"VARCHAR": "VARCHAR", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN"}
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
# Errors that come from the mutations themselves (a constraint, a conversion, a name or type
# that does not fit the schema): the same mutations fail the same way every time.  Anything
# else (I/O, a full disk, out of memory, a transaction conflict) may pass on a retry.
_REJECTED = (
    duckdb.IntegrityError, duckdb.DataError, duckdb.ProgrammingError, duckdb.NotSupportedError,
    ValueError, TypeError, KeyError, OverflowError,
)


def _iso(v: object) -> str:
    """JSON fallback for the only non-JSON type rows carry (called by json only for those)."""
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(f"cannot store {type(v).__name__} in a bulk insert")


# Built once (json.dumps with options builds an encoder per call).
_ROWS = json.JSONEncoder(ensure_ascii=False, default=_iso)


def _memory_limit() -> str:
    value = (env("MUSUBI_DB_MEMORY_LIMIT") or "").strip() or DEFAULT_MEMORY_LIMIT
    if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", value, re.I):
        raise StorageError(
            f"MUSUBI_DB_MEMORY_LIMIT={value!r} is not a size; give e.g. 256MB or 1GB.", code="bad_configuration"
        )
    return value


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None elsewhere (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def _ident(name: str) -> str:
    # Table and column names come from engine code, never from users; the check
    # keeps it that way.
    if not _IDENT.fullmatch(name):
        raise ValueError(f"bad identifier {name!r}")
    return name


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every bundled migration, in order."""
    out = []
    pkg = resources.files("core.storage") / "migrations"
    for entry in pkg.iterdir():
        m = re.match(r"(\d+)_.*\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(out)


SCHEMA_VERSION = max(v for v, _ in migrations())
# Consecutive inserts into one table from this many on are written as one statement (see apply).
BULK_RUN = 16
# Tables written in such runs: the code index's (plain columns only; see docs/search.md#indexing).
BULK_TABLES = frozenset({"code_files", "code_chunks"})


def _open_error(path: Path, exc: Exception) -> StorageError:
    text = str(exc)
    if "lock" in text.lower():
        m = re.search(r"PID (\d+)", text)
        who = f" (held by PID {m.group(1)})" if m else ""
        return StorageError(
            f"database {path} is locked by another process{who}. Only one process may open it: "
            "close any duckdb shell or other program using it, or stop the other engine, then retry.",
            code="database_locked",
        )
    if "newer" in text.lower() or "version" in text.lower() and "storage" in text.lower():
        return StorageError(
            f"database {path} was written by a newer DuckDB storage format than this Musubi supports: "
            "upgrade musubi-workstation.",
            code="schema_too_new",
        )
    return StorageError(
        f"database {path} cannot be opened: it is corrupt or not a Musubi database ({text.splitlines()[0]}). "
        "Move it aside and restore a backup, or start with an empty home.",
        code="database_corrupt",
    )


class DuckDBStorage:
    """Storage backed by one DuckDB file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        self._local = threading.local()
        try:
            self.con.execute(f"SET memory_limit = '{_memory_limit()}'")
            self.con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
            self._migrate()
        except StorageError:
            self.con.close()
            raise
        except duckdb.Error as exc:
            self.con.close()
            raise _open_error(self.path, exc) from None

    # -- schema ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise StorageError(
                f"database {self.path} has schema version {current}, but this Musubi knows up to version "
                f"{SCHEMA_VERSION}: it was written by a newer Musubi. Upgrade musubi-workstation to open it.",
                code="schema_too_new",
            )
        for version, sql in migrations():
            if version <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(sql)
                con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [version])
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def schema_version(self) -> int:
        row = self._one("SELECT max(version) FROM schema_version")
        return int(row[0]) if row and row[0] is not None else 0

    # -- cursors --------------------------------------------------------------------------

    def _cur(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self.con.cursor()
            self._local.cur = cur
        return cur

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query on this thread's cursor, with the result read to its end.

        Why not ``fetchone()``: it leaves the result open, and with it the cursor's
        transaction, which then predates every later commit of the apply thread.  DuckDB
        cannot checkpoint while such a transaction is open, neither on its own (its WAL
        threshold) nor on request, so its WAL and the memory holding the rows committed
        since the last checkpoint grew with every write, without bound.
        """
        rows = self._cur().execute(sql, list(params)).fetchall()
        return tuple(rows[0]) if rows else None

    # -- load -----------------------------------------------------------------------------

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._cur().execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def load(self, now: datetime) -> Snapshot:
        snap = Snapshot()
        snap.tenants = self._dicts("SELECT * FROM tenants ORDER BY tenant_id")
        snap.roles = self._dicts("SELECT * FROM roles ORDER BY tenant_id, role")
        snap.projects = self._dicts("SELECT * FROM projects ORDER BY tenant_id, name")
        snap.members = self._dicts("SELECT * FROM members ORDER BY tenant_id, user_name, project")
        snap.quotas = self._dicts("SELECT * FROM quotas ORDER BY quota_id")
        snap.reservations = self._dicts("SELECT * FROM reservations WHERE state = 'open'")
        month = window_start("month", now)
        snap.alerts = self._dicts("SELECT * FROM quota_alerts WHERE window_start >= ?", [month])
        starts = {p: window_start(p, now) for p in PERIODS}
        aggs = []
        params: list[Any] = []
        for p in PERIODS:
            for col in ("tokens", "requests", "cost_micros"):
                aggs.append(f"coalesce(sum({col}) FILTER (WHERE ts >= ?), 0)")
                params.append(starts[p])
        params.append(month)
        rows = self._cur().execute(
            f"SELECT tenant_id, user_name, {', '.join(aggs)} FROM usage_ledger WHERE ts >= ? GROUP BY ALL", params
        ).fetchall()
        for r in rows:
            per: dict[str, tuple[datetime, int, int, int]] = {}
            for i, p in enumerate(PERIODS):
                t, q, c = r[2 + 3 * i : 5 + 3 * i]
                per[p] = (starts[p], int(t), int(q), int(c))
            snap.usage[(r[0], r[1])] = per
        for tenant, seq, h in self._cur().execute(
            "SELECT tenant_id, max(seq), arg_max(hash, seq) FROM audit_log GROUP BY tenant_id"
        ).fetchall():
            snap.audit_heads[tenant] = (int(seq), str(h))
        # A tenant whose every event was pruned chains on from its newest checkpoint.
        for tenant, seq, h in self._cur().execute(
            "SELECT tenant_id, max(seq), arg_max(hash, seq) FROM audit_checkpoints GROUP BY tenant_id"
        ).fetchall():
            snap.pruned_through[tenant] = int(seq)
            if tenant not in snap.audit_heads or snap.audit_heads[tenant][0] < seq:
                snap.audit_heads[tenant] = (int(seq), str(h))
        # Events of a quarantined group are not in audit_log, but later events chain on them.
        quarantined = self.quarantined()
        snap.quarantined = len(quarantined)
        for q in quarantined:
            for r in q["audit"]:
                tenant, last = r["tenant_id"], int(r["last_seq"])
                if tenant not in snap.audit_heads or snap.audit_heads[tenant][0] < last:
                    snap.audit_heads[tenant] = (last, str(r["last_hash"]))
        row = self._one("SELECT coalesce(max(quota_id), 0) FROM quotas")
        snap.max_ids["quota"] = int(row[0]) if row else 0
        row = self._one("SELECT coalesce(max(entry_id), 0) FROM usage_ledger")
        snap.max_ids["ledger"] = int(row[0]) if row else 0
        snap.meta = {k: v for k, v in self._cur().execute("SELECT key, value FROM engine_meta").fetchall()}
        snap.jobs = self._dicts("SELECT * FROM jobs ORDER BY created_at, job_id")
        # -- identity / SSO (core/identity)
        snap.sso_rules = self._dicts("SELECT * FROM sso_role_rules ORDER BY tenant_id, provider, claim, value")
        snap.sso_policies = self._dicts("SELECT * FROM sso_policies ORDER BY tenant_id")
        # -- integrations (issue 17 gaps): the durable notification queue, webhook state, runs' git refs
        snap.integrations = {t: self._dicts(f"SELECT * FROM {t}") for t in
                             ("notify_queue", "webhook_deliveries", "webhook_pipelines", "run_refs",
                              "inbound_replay")}  # v12: Slack's replay guard
        return snap

    # -- writes ---------------------------------------------------------------------------

    @staticmethod
    def _where(where: dict[str, Any]) -> tuple[str, list[Any]]:
        parts, params = [], []
        for col, val in where.items():
            if isinstance(val, tuple) and len(val) == 2 and val[0] == "in":
                # ("in", [v, ...]): one statement for a whole batch (the code index marks its
                # embedded chunks this way instead of one UPDATE per chunk).
                values = list(val[1])
                parts.append(f"{_ident(col)} IN ({', '.join('?' * len(values))})" if values else "FALSE")
                params.extend(values)
            elif isinstance(val, tuple) and len(val) == 2 and val[0] in ("<", "<=", ">", ">=", "!="):
                parts.append(f"{_ident(col)} {val[0]} ?")
                params.append(val[1])
            else:
                parts.append(f"{_ident(col)} = ?")
                params.append(val)
        return " AND ".join(parts) or "TRUE", params

    def meta_value(self, key: str) -> str | None:
        row = self._one("SELECT value FROM engine_meta WHERE key = ?", [key])
        return str(row[0]) if row else None

    def apply(self, mutations: Sequence[Mutation], meta: dict[str, str] | None = None) -> None:
        """One transaction: ordered mutations first, then the gathered appends, then ``meta`` upserts."""
        con = self.con
        appends: dict[str, list[dict[str, Any]]] = defaultdict(list)
        try:
            con.execute("BEGIN TRANSACTION")
            i, n = 0, len(mutations)
            while i < n:
                m = mutations[i]
                i += 1
                if isinstance(m, Insert):
                    if m.table in APPEND_ONLY:
                        appends[m.table].append(m.row)
                        continue
                    run = self._insert_run(mutations, i - 1) if m.table in BULK_TABLES else []
                    if len(run) >= BULK_RUN:  # e.g. a batch of code chunks: one statement, in its place
                        self._bulk_insert(m.table, run)
                        i += len(run) - 1
                        continue
                    cols = list(m.row)
                    con.execute(
                        f"INSERT INTO {_ident(m.table)} ({', '.join(map(_ident, cols))}) VALUES ({', '.join('?' * len(cols))})",
                        [m.row[c] for c in cols],
                    )
                elif isinstance(m, Update):
                    sets = ", ".join(f"{_ident(c)} = ?" for c in m.values)
                    w, wp = self._where(m.where)
                    con.execute(f"UPDATE {_ident(m.table)} SET {sets} WHERE {w}", [*m.values.values(), *wp])
                elif isinstance(m, Delete):
                    w, wp = self._where(m.where)
                    con.execute(f"DELETE FROM {_ident(m.table)} WHERE {w}", wp)
            for table, rows in appends.items():
                self._bulk_insert(table, rows)
            for key, value in (meta or {}).items():
                con.execute("INSERT OR REPLACE INTO engine_meta (key, value) VALUES (?, ?)", [key, value])
            con.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, _REJECTED):
                raise WriteRejected(f"the database refused the write: {exc}") from exc
            raise StorageError(f"could not write to {self.path}: {exc}", code="write_failed") from exc

    @staticmethod
    def _insert_run(mutations: Sequence[Mutation], start: int) -> list[dict[str, Any]]:
        """The rows of the consecutive inserts into one table with the same columns from ``start`` on.

        Such a run is written as one multi-row statement at its place in the order, so the
        result is the same as row by row (order across tables and with deletes is kept).
        """
        first = mutations[start]
        assert isinstance(first, Insert)
        keys = first.row.keys()
        rows = [first.row]
        for m in mutations[start + 1:]:
            if not (isinstance(m, Insert) and m.table == first.table and m.row.keys() == keys):
                break
            rows.append(m.row)
        return rows

    def _column_types(self, table: str) -> dict[str, str]:
        cache = self.__dict__.setdefault("_coltypes", {})
        if table not in cache:
            cache[table] = dict(
                self.con.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]
                ).fetchall()
            )
        return cache[table]

    def _bulk_insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Insert many rows as ONE JSON parameter.

        DuckDB binds Python parameters one value at a time (tens of µs each); a
        single JSON text unpacked by ``from_json`` is ~10x faster, which is what
        lets a group commit keep up with thousands of usage records a second.
        """
        types = self._column_types(table)
        cols = list(rows[0])
        struct = {c: _JSON_TYPES.get(types[c], "VARCHAR") for c in cols}
        payload = _ROWS.encode(rows)
        select = ", ".join(
            f"CAST(r.{_ident(c)} AS {types[c]})" if struct[c] != types[c] else f"r.{_ident(c)}" for c in cols
        )
        self.con.execute(
            f"INSERT INTO {_ident(table)} ({', '.join(map(_ident, cols))}) "
            f"SELECT {select} FROM (SELECT unnest(from_json(?, ?)) AS r)",
            [payload, json.dumps([struct])],
        )

    # -- reads ----------------------------------------------------------------------------

    @staticmethod
    def _audit_filters(q: AuditQuery) -> tuple[str, list[Any]]:
        parts: list[str] = ["tenant_id = ?"]
        params: list[Any] = [q.tenant_id]
        if q.since is not None:
            parts.append("ts >= ?")
            params.append(q.since)
        if q.until is not None:
            parts.append("ts < ?")
            params.append(q.until)
        if q.actor:
            parts.append("(actor = ? OR json_extract_string(details, '$.impersonator') = ?)")
            params += [q.actor, q.actor]
        if q.action:
            if q.action.endswith("*"):
                parts.append("starts_with(action, ?)")
                params.append(q.action[:-1])
            else:
                parts.append("action = ?")
                params.append(q.action)
        if q.outcome:
            parts.append("outcome = ?")
            params.append(q.outcome)
        if q.after_seq is not None:
            parts.append("seq > ?")
            params.append(q.after_seq)
        return " AND ".join(parts), params

    def audit_list(self, q: AuditQuery) -> list[dict[str, Any]]:
        w, params = self._audit_filters(q)
        order = "DESC" if q.descending else "ASC"
        lim = f" LIMIT {int(q.limit)}" if q.limit else ""
        cur = self._cur().execute(
            f"SELECT tenant_id, seq, strftime(ts, '{TS_FMT}'), actor, action, resource, outcome, details, prev_hash, hash "
            f"FROM audit_log WHERE {w} ORDER BY seq {order}{lim}",
            params,
        )
        keys = ("tenant_id", "seq", "ts", "actor", "action", "resource", "outcome", "details", "prev_hash", "hash")
        out = []
        for r in cur.fetchall():
            d = dict(zip(keys, r, strict=True))
            d["details"] = json.loads(d["details"])
            out.append(d)
        return out

    def audit_chain(self, tenant_id: str, start_seq: int, chunk: int = 50_000) -> Iterator[tuple[Any, ...]]:
        cur = self.con.cursor()  # a private cursor: the caller may iterate from any thread
        try:
            # A page at a time (keyset): one ORDER BY over the whole chain ran out of the engine's small
            # memory_limit at a few hundred thousand events; a top-``chunk`` sort stays within it.
            while True:
                cur.execute(
                    f"SELECT seq, strftime(ts, '{TS_FMT}'), actor, action, resource, outcome, details, prev_hash, "
                    f"hash FROM audit_log WHERE tenant_id = ? AND seq >= ? ORDER BY seq LIMIT {int(chunk)}",
                    [tenant_id, start_seq],
                )
                rows = cur.fetchall()
                yield from rows
                if len(rows) < chunk:
                    return
                start_seq = int(rows[-1][0]) + 1
        finally:
            cur.close()

    def audit_chain_joined(self, tenant_id: str, start_seq: int, chunk: int = 25_000) -> Iterator[tuple[int, int, bool, str, str]]:
        """The chain in chunks shaped for fast verification.

        Yields ``(lo, count, gapless, pieces, hashes)`` per seq range ``[lo, lo+chunk)``:
        ``pieces`` joins ``prev_hash + "\\n" + C`` of each event with chr(30) (safe:
        C is JSON, whose strings escape every control character), built by DuckDB;
        ``hashes`` concatenates the stored 64-char hashes.  Moving two strings per
        chunk instead of nine values per row is what makes verification fast.  SQL's
        JSON escaping can differ from Python's for a few control characters, so
        the caller re-checks a mismatching event with the reference canonical form.
        """
        cur = self.con.cursor()
        try:
            row = cur.execute(
                "SELECT max(seq) FROM audit_log WHERE tenant_id = ? AND seq >= ?", [tenant_id, start_seq]
            ).fetchone()
            max_seq = row[0] if row else None
            if max_seq is None:
                return
            for lo in range(start_seq, int(max_seq) + 1, chunk):
                hi = lo + chunk
                n, nd, mn, mx, pieces, hashes = cur.execute(  # type: ignore[misc]
                    f"SELECT count(*), count(DISTINCT seq), min(seq), max(seq), "
                    f"string_agg({_PIECE_SQL}, chr(30) ORDER BY seq), string_agg(hash, '' ORDER BY seq) "
                    "FROM audit_log WHERE tenant_id = ? AND seq >= ? AND seq < ?",
                    [tenant_id, lo, hi],
                ).fetchone()
                gapless = n == nd and mn == lo and mx == lo + n - 1
                yield lo, int(n), gapless, pieces or "", hashes or ""
        finally:
            cur.close()

    def audit_chain_hash(self, tenant_id: str, seq: int) -> str | None:
        row = self._one("SELECT hash FROM audit_log WHERE tenant_id = ? AND seq = ?", [tenant_id, seq])
        return str(row[0]) if row else None

    def audit_seqs(self, tenant_id: str, lo: int, hi: int) -> list[int]:
        """Seqs in ``[lo, hi)`` in order (to locate a gap or duplicate)."""
        rows = self._cur().execute(
            "SELECT seq FROM audit_log WHERE tenant_id = ? AND seq >= ? AND seq < ? ORDER BY seq", [tenant_id, lo, hi]
        ).fetchall()
        return [int(r[0]) for r in rows]

    def audit_row(self, tenant_id: str, seq: int) -> tuple[Any, ...]:
        """(ts_text, actor, action, resource, outcome, details) of one event."""
        cur = self.con.cursor()
        try:
            row = cur.execute(
                f"SELECT strftime(ts, '{TS_FMT}'), actor, action, resource, outcome, CAST(details AS VARCHAR) "
                "FROM audit_log WHERE tenant_id = ? AND seq = ? LIMIT 1",
                [tenant_id, seq],
            ).fetchone()
        finally:
            cur.close()
        if row is None:
            raise KeyError(seq)
        return tuple(row)

    def audit_export(self, q: AuditQuery, fmt: str, path: Path) -> int:
        w, params = self._audit_filters(q)
        if fmt == "parquet":
            cols = "tenant_id, seq, ts, actor, action, resource, outcome, details, prev_hash, hash"
            opts = "FORMAT parquet"
        elif fmt in ("jsonl", "csv"):
            cols = (
                f"tenant_id, seq, strftime(ts, '{TS_FMT}') AS ts, actor, action, resource, outcome, "
                "details, prev_hash, hash"
            )
            opts = "FORMAT json" if fmt == "jsonl" else "FORMAT csv, HEADER true"
        else:
            raise BadRequest(f"unknown export format {fmt!r}: use jsonl, csv or parquet.", field="format")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        lit = str(tmp).replace("'", "''")
        cur = self._cur()
        n_row = cur.execute(f"SELECT count(*) FROM audit_log WHERE {w}", params).fetchone()
        lim = f" LIMIT {int(q.limit)}" if q.limit else ""
        if lim:
            n_row = (min(int(n_row[0]), int(q.limit or 0)),) if n_row else None
        cur.execute(f"COPY (SELECT {cols} FROM audit_log WHERE {w} ORDER BY seq{lim}) TO '{lit}' ({opts})", params)
        os.replace(tmp, path)
        return int(n_row[0]) if n_row else 0

    def quarantined(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE list_contains(tenants, ?)", [tenant_id]) if tenant_id else ("", [])
        rows = self._dicts(f"SELECT * FROM quarantined_groups {where} ORDER BY group_no", params)
        for r in rows:
            r["audit"] = json.loads(r["audit"]) if isinstance(r["audit"], str) else r["audit"]
            r["quarantined_at"] = r["quarantined_at"].strftime(TS_FMT)
        return rows

    def checkpoint(self) -> None:
        """``CHECKPOINT``: write what DuckDB's WAL holds into the file and empty the WAL.

        Until then DuckDB keeps the rows committed since the last checkpoint in memory as
        well as in its WAL, so a busy engine that never checkpoints grows both without bound.
        """
        self.con.execute("CHECKPOINT")

    def release_memory(self) -> None:
        """Hand memory the database freed (e.g. rows a checkpoint wrote out) back to the OS.

        DuckDB's threads allocate through the C library, whose per-thread arenas keep
        freed memory for reuse; after a checkpoint that is megabytes the engine may never
        need again, and the process's RSS would only ever grow.  ``malloc_trim`` returns it.
        """
        if _TRIM is not None:
            _TRIM(0)

    def wal_size(self) -> int:
        """Bytes in DuckDB's own WAL next to the file (0 when there is none)."""
        try:
            return os.stat(f"{self.path}.wal").st_size
        except OSError:
            return 0

    def checkpoints(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT * FROM audit_checkpoints WHERE tenant_id = ? ORDER BY seq", [tenant_id])
        for r in rows:
            for k in ("created_at", "pruned_before"):
                r[k] = r[k].strftime(TS_FMT)
        return rows

    def last_event_before(self, tenant_id: str, before: datetime) -> tuple[int, str] | None:
        row = self._one(
            "SELECT seq, hash FROM audit_log WHERE tenant_id = ? AND ts < ? ORDER BY seq DESC LIMIT 1",
            [tenant_id, before],
        )
        return (int(row[0]), str(row[1])) if row else None

    def count_events(self, tenant_id: str, max_seq: int) -> int:
        row = self._one("SELECT count(*) FROM audit_log WHERE tenant_id = ? AND seq <= ?", [tenant_id, max_seq])
        return int(row[0]) if row else 0

    def usage_history(self, tenant_id: str, since: datetime, bucket: str, user: str | None) -> list[dict[str, Any]]:
        if bucket not in ("minute", "hour", "day", "month"):
            raise BadRequest(f"unknown bucket {bucket!r}: use minute, hour, day or month.")
        params: list[Any] = [tenant_id, since]
        extra = ""
        if user:
            extra = " AND user_name = ?"
            params.append(user)
        rows = self._cur().execute(
            f"SELECT date_trunc('{bucket}', ts) AS b, sum(tokens), sum(requests), sum(cost_micros) "
            f"FROM usage_ledger WHERE tenant_id = ? AND ts >= ?{extra} GROUP BY b ORDER BY b",
            params,
        ).fetchall()
        return [
            {"bucket": b.strftime(TS_FMT), "tokens": int(t), "requests": int(q), "cost_micros": int(c)}
            for b, t, q, c in rows
        ]

    # -- jobs no longer held in memory (core/jobs/service.py) ------------------------------

    def job_row(self, tenant_id: str, job_id: str) -> dict[str, Any] | None:
        """The ``jobs`` row of ``job_id`` in the tenant, or None."""
        rows = self._dicts("SELECT * FROM jobs WHERE tenant_id = ? AND job_id = ?", [tenant_id, job_id])
        return rows[0] if rows else None

    def job_rows(
        self, tenant_id: str, states: Sequence[str], kind: str | None, projects: Sequence[str] | None,
        exclude: Sequence[str], limit: int,
    ) -> list[dict[str, Any]]:
        """The tenant's jobs in ``states`` (of ``kind``), newest first, leaving out the ids in ``exclude``.

        ``projects`` None: every scope; else only jobs of those projects (a caller without a tenant-wide role).
        """
        where, params = ["tenant_id = ?", "list_contains(?, state)", "NOT list_contains(?, job_id)"], [
            tenant_id, list(states), list(exclude)]
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if projects is not None:
            where.append("project <> '' AND list_contains(?, project)")
            params.append(list(projects))
        return self._dicts(f"SELECT * FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, job_id DESC "
                           f"LIMIT {int(limit)}", params)

    # -- the code index (core/rag; docs/search.md#indexing) -------------------------------

    # -- runs (issue 12, core/orchestration/service.py; migration 006) -------------------------

    def runs_load(self, run_ids: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Rows of the run tables: every run, and the steps, calls, artefacts, approvals and log length
        of ``run_ids`` (None: of every run not yet done, failed or cancelled)."""
        out: dict[str, list[dict[str, Any]]] = {"runs": self._dicts("SELECT * FROM runs ORDER BY created_at, run_id")}
        if run_ids is None:
            run_ids = [r["run_id"] for r in out["runs"] if r["state"] not in ("done", "failed", "cancelled")]
        ids = list(run_ids)
        for table, order in (("run_steps", "run_id, path"), ("run_calls", "run_id, sent_at"),
                             ("run_artefacts", "run_id, created_at"), ("run_approvals", "run_id, asked_at")):
            out[table] = self._dicts(f"SELECT * FROM {table} WHERE list_contains(?, run_id) ORDER BY {order}", [ids])
        out["run_log"] = self._dicts("SELECT run_id, max(n) AS n FROM run_log GROUP BY run_id")
        out["run_settings"] = self._dicts("SELECT * FROM run_settings ORDER BY tenant_id")  # migration 011
        return out

    def provider_tune_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of the provider fine-tuning tables (migration 009; core/finetune/service.py)."""
        return {t: self._dicts(f"SELECT * FROM {t} ORDER BY created_at")
                for t in ("provider_tune_datasets", "provider_tune_jobs")}
    def run_step_responses(self, run_id: str, path: str) -> list[str]:
        """The responses of one step's completed calls, oldest first (what a finished step said)."""
        rows = self._dicts("SELECT response FROM run_calls WHERE run_id = ? AND step_path = ? AND outcome = 'ok' "
                           "ORDER BY sent_at, call_key", [run_id, path])
        return [r["response"] or "" for r in rows]

    def run_log(self, run_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Lines of one run's log after line ``after``, oldest first."""
        return self._dicts("SELECT n, ts, step_path, kind, text FROM run_log WHERE run_id = ? AND n > ? "
                           "ORDER BY n LIMIT ?", [run_id, after, limit])

    def code_index(self, tenant_id: str, project: str) -> dict[str, Any] | None:
        """The project's ``code_indexes`` row, or None."""
        rows = self._dicts("SELECT * FROM code_indexes WHERE tenant_id = ? AND project = ?", [tenant_id, project])
        return rows[0] if rows else None

    def code_file_hashes(self, tenant_id: str, project: str) -> dict[str, str]:
        """``path -> sha256`` of the project's indexed files."""
        cur = self._cur().execute("SELECT path, sha256 FROM code_files WHERE tenant_id = ? AND project = ?",
                                  [tenant_id, project])
        return dict(cur.fetchall())

    def code_counts(self, tenant_id: str, project: str) -> tuple[int, int, int]:
        """(files, chunks, embedded chunks) of the project."""
        w = [tenant_id, project]
        files = self._one("SELECT count(*) FROM code_files WHERE tenant_id = ? AND project = ?", w)
        chunks = self._one("SELECT count(*), count(*) FILTER (WHERE dense) FROM code_chunks "
                           "WHERE tenant_id = ? AND project = ?", w)
        assert files is not None and chunks is not None
        return int(files[0]), int(chunks[0]), int(chunks[1])

    # Pages of this many rows: a project's chunks in one sorted result (100k rows with their text)
    # overran the engine's 64 MB DuckDB memory limit (measured: OutOfMemoryException at 100k chunks).
    CODE_PAGE = 5_000

    def _code_paged(self, cols: str, tenant_id: str, project: str, extra: str = "") -> list[tuple[Any, ...]]:
        """``cols`` (the first being ``chunk_id``) of the project's chunks in id order, read page by page."""
        out: list[tuple[Any, ...]] = []
        after = -1
        while True:
            page = self._cur().execute(
                f"SELECT {cols} FROM code_chunks WHERE tenant_id = ? AND project = ? AND chunk_id > ? {extra} "
                "ORDER BY chunk_id LIMIT ?", [tenant_id, project, after, self.CODE_PAGE]).fetchall()
            out.extend(tuple(r) for r in page)
            if len(page) < self.CODE_PAGE:
                return out
            after = int(page[-1][0])

    def code_chunk_keys(self, tenant_id: str, project: str) -> list[tuple[int, str, str, bool]]:
        """``(chunk_id, path, hash, dense)`` of every chunk of the project, in id order."""
        return self._code_paged("chunk_id, path, hash, dense", tenant_id, project)

    def code_chunk_ids(self, tenant_id: str, project: str) -> list[tuple[int]]:
        return self._code_paged("chunk_id", tenant_id, project)

    def code_pending(self, tenant_id: str, project: str) -> list[tuple[int, str]]:
        """``(chunk_id, hash)`` of the chunks not embedded yet, in id order."""
        return self._code_paged("chunk_id, hash", tenant_id, project, "AND NOT dense")

    _CHUNK_COLS = "chunk_id, path, start_line, end_line, language, kind, symbol, signature, part, text"

    def code_passages(self, tenant_id: str, project: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """Chunk rows (``core.rag.prep.ROW_FIELDS``) of ``ids``."""
        if not ids:
            return []
        return [tuple(r) for r in self._cur().execute(
            f"SELECT {self._CHUNK_COLS} FROM code_chunks WHERE tenant_id = ? AND project = ? "
            "AND chunk_id IN (SELECT unnest(?::BIGINT[]))", [tenant_id, project, list(ids)]).fetchall()]

    def code_chunk_rows(self, tenant_id: str, project: str) -> list[tuple[Any, ...]]:
        """Every chunk row of the project (``core.rag.prep.ROW_FIELDS``), in id order."""
        return self._code_paged(self._CHUNK_COLS, tenant_id, project)

    # -- local embedder (issue 19) ---------------------------------------------------------------

    def tuned_embedders(self, tenant_id: str, project: str) -> list[dict[str, Any]]:
        """The project's tuned embedder versions (``tuned_embedders`` rows), oldest first."""
        return self._dicts("SELECT * FROM tuned_embedders WHERE tenant_id = ? AND project = ? ORDER BY version",
                           [tenant_id, project])

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.execute("CHECKPOINT")
        self.con.close()

    # -- tutorials (issue 18; docs/tutorials.md) ------------------------------------------

    def tutorial_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every ``tutorial_progress`` and ``tutorial_steps`` row (small: users x tutorials x steps)."""
        progress = self._dicts("SELECT * FROM tutorial_progress ORDER BY user_name, tutorial_id")
        steps = self._dicts("SELECT * FROM tutorial_steps ORDER BY user_name, tutorial_id, marked_at")
        return progress, steps
