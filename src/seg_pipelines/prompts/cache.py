"""Append-only JSONL cache of LLM responses, so prompt generation is resumable and replayable.

Each line is one record::

    {"schema": 1, "id": "<sha256 of key>", "key": {backend, model, template_version, kind,
     class_name, attribute, question}, "settings": "<digest of the generation settings>",
     "response": "<cleaned text>", "raw": "<raw text>", "created": "<UTC ISO time>"}

``settings`` (:func:`seg_pipelines.prompts.generation.answer_settings`) says which sampling settings
produced the answer: a lookup with a digest only finds answers of those settings, a lookup with
``settings=None`` (a replay backend) finds the latest answer of any. Records written before the
field existed have none and are only found by the latter.

A record is written and flushed (and fsync'ed) the moment its answer arrives, so an interrupted
run loses at most the answer in flight; a rerun asks only what is missing. A truncated last line
(killed mid-write) and records of another schema version are skipped with a warning. When the
same key appears twice the last record wins.

Several runs may share one cache file (two ``kedro run`` at once, a sweep): before asking, a run
*claims* the question (:meth:`ResponseCache.claim`: an exclusive byte-range lock on ``<file>.lock``
at the question's slot, plus a thread lock) and re-reads what other runs appended meanwhile; a run
that finds the answer there uses it instead of asking again. Without ``fcntl`` (Windows) claims
are per process only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:  # POSIX record locks: claims between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger(__name__)

CACHE_SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """Identity of one LLM question: who answered it, under which template, about what."""

    backend: str
    model: str
    template_version: str
    kind: str  # "description" or "attributes"
    class_name: str = ""
    attribute: str = ""
    question: str = ""

    @property
    def id(self) -> str:
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def __str__(self) -> str:
        what = "/".join(p for p in (self.class_name, self.attribute) if p) or self.question[:60]
        return f"{self.backend}:{self.model}@{self.template_version} {self.kind} {what!r} (id {self.id[:12]})"


class ResponseCache:
    """LLM responses keyed by :class:`CacheKey`, persisted to an append-only JSONL file.

    Args:
        path: the JSONL file (created on first write); ``None`` keeps the cache in memory only.
        fsync: also ``os.fsync`` after each record (survives a machine crash, not just a kill).
    """

    def __init__(self, path: str | Path | None = None, *, fsync: bool = True) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = fsync
        self.hits = 0
        self.misses = 0
        self.skipped_lines = 0
        self._records: dict[tuple[str, str | None], dict[str, Any]] = {}  # (id, settings) -> record
        self._latest: dict[str, dict[str, Any]] = {}  # id -> the last record stored under any settings
        self.shared_hits = 0  # answers another run wrote while this one was going to ask
        self._lock = threading.Lock()
        self._claims: dict[str, threading.Lock] = {}
        self._offset = 0  # bytes of the file read so far
        self._lines_read = 0
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        self._read_new_lines(to_end=True)
        logger.info("Loaded %d cached LLM responses from %s", len(self._records), self.path)

    def _read_new_lines(self, to_end: bool = False) -> None:
        """Read the lines appended since the last read (by this or another process): the complete
        ones, and with ``to_end`` a last line without its newline too (a run killed mid-write)."""
        assert self.path is not None
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        end = len(data) if to_end else data.rfind(b"\n") + 1  # else a line being written is read next time
        self._offset += end
        for raw in data[:end].splitlines():
            self._lines_read += 1
            self._parse_line(raw.decode("utf-8", errors="replace"), self._lines_read)

    def _parse_line(self, line: str, line_number: int) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            self.skipped_lines += 1
            logger.warning("%s:%d: unreadable cache line skipped", self.path, line_number)
            return
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            self.skipped_lines += 1
            what = "a record without an 'id'" if isinstance(record, dict) else f"a JSON {type(record).__name__}"
            logger.warning("%s:%d: cache line skipped: %s, not a cached response", self.path, line_number, what)
            return
        if record.get("schema") != CACHE_SCHEMA_VERSION:
            self.skipped_lines += 1
            logger.warning(
                "%s:%d: cache record of schema %r skipped (this version reads %d)",
                self.path,
                line_number,
                record.get("schema"),
                CACHE_SCHEMA_VERSION,
            )
            return
        self._store(record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: CacheKey) -> bool:
        return key.id in self._latest

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._records.values()))

    def _store(self, record: dict[str, Any]) -> None:
        self._records.pop((record["id"], record.get("settings")), None)  # keep file order: last wins
        self._records[(record["id"], record.get("settings"))] = record
        self._latest[record["id"]] = record

    def get(self, key: CacheKey, *, settings: str | None = None) -> str | None:
        """The cached response for ``key`` (counted as a hit), or ``None`` (counted as a miss):
        the one generated with ``settings`` (a digest), or with ``None`` the latest of any."""
        with self._lock:
            record = self._latest.get(key.id) if settings is None else self._records.get((key.id, settings))
            if record is None:
                self.misses += 1
                return None
            self.hits += 1
            return record["response"]

    def put(self, key: CacheKey, response: str, *, raw: str | None = None, settings: str | None = None) -> None:
        """Store ``response`` (generated with ``settings``) and append it to the file at once."""
        record = {
            "schema": CACHE_SCHEMA_VERSION,
            "id": key.id,
            "key": dataclasses.asdict(key),
            "settings": settings,
            "response": response,
            "raw": raw if raw is not None else response,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    if self._ends_mid_line():
                        line = "\n" + line  # never glue a record onto a truncated line
                    handle.write(line)
                    handle.flush()
                    if self.fsync:
                        os.fsync(handle.fileno())
            self._store(record)

    @contextmanager
    def claim(self, key: CacheKey) -> Iterator[None]:
        """Hold ``key`` while asking it: other threads and processes that claim it wait, then find
        the answer (:meth:`get_shared`) instead of asking again."""
        with self._lock:
            thread_lock = self._claims.setdefault(key.id, threading.Lock())
        with thread_lock:
            if self.path is None or fcntl is None:
                yield
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            slot = int(key.id[:12], 16)  # one byte per question in a sparse lock file
            with open(self.path.with_name(self.path.name + ".lock"), "a+b") as lock_file:
                fcntl.lockf(lock_file, fcntl.LOCK_EX, 1, slot)
                try:
                    yield
                finally:
                    fcntl.lockf(lock_file, fcntl.LOCK_UN, 1, slot)

    def get_shared(self, key: CacheKey, *, settings: str | None = None) -> str | None:
        """After a miss, inside :meth:`claim`: the answer another run appended meanwhile, if any
        (then the miss is recounted as a hit), else ``None``."""
        if self.path is None:
            return None
        with self._lock:
            self._read_new_lines()
            record = self._latest.get(key.id) if settings is None else self._records.get((key.id, settings))
            if record is None:
                return None
            self.misses, self.hits, self.shared_hits = self.misses - 1, self.hits + 1, self.shared_hits + 1
            return record["response"]

    def _ends_mid_line(self) -> bool:
        assert self.path is not None
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def stats(self) -> dict[str, int]:
        """Hit/miss counters of this session and the number of stored responses."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "shared_hits": self.shared_hits,
            "entries": len(self._records),
        }
