"""Reuse compiled SQL for PostgreSQL: `databases` compiles every statement anew.

SQLAlchemy's engine keeps a compiled cache keyed by the statement's cache key; the
`databases` backend bypasses it, and compiling cost about half of the CPU of an
endorsement (eleven statements). This does what the engine does: one compilation
per statement shape, then the parameters of each call are extracted from its cache
key. Statements whose SQL depends on their values (expanding IN lists, which are
rendered inline) and DDL are compiled as before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, cast

from databases.backends.postgres import PostgresConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.ddl import DDLElement

_MAX_ENTRIES = 2000
_cache: OrderedDict[Any, tuple[Any, str, list[str], Any]] = OrderedDict()
_lock = threading.Lock()
_original_compile = PostgresConnection._compile


def _compile(self: PostgresConnection, query: ClauseElement) -> tuple[str, list[Any], Any]:
    if isinstance(query, DDLElement) or not isinstance(query, ClauseElement):
        return _original_compile(self, query)
    key = query._generate_cache_key()
    if key is None:
        return _original_compile(self, query)
    cache_key = (id(self._dialect), key.key)
    with _lock:
        entry = _cache.get(cache_key)
        if entry is not None:
            _cache.move_to_end(cache_key)
    if entry is None:
        # SQLCompiler, whose (private) binds, literal_execute_params and bind processors we read.
        compiled = cast(SQLCompiler, query.compile(dialect=self._dialect, cache_key=key))
        if any(bind.expanding for bind in compiled.binds.values()) or compiled.literal_execute_params:
            return _original_compile(self, query)
        names = sorted(compiled.params)
        mapping = {name: f"${i}" for i, name in enumerate(names, start=1)}
        entry = (compiled, compiled.string % mapping, names, compiled._result_columns)
        with _lock:
            _cache[cache_key] = entry
            if len(_cache) > _MAX_ENTRIES:
                _cache.popitem(last=False)
    compiled, sql, names, result_columns = entry
    params = compiled.construct_params(extracted_parameters=key.bindparams)
    processors: dict[str, Any] = compiled._bind_processors  # type: ignore[assignment]  # a dict at run time
    args = [processors[name](params[name]) if name in processors else params[name] for name in names]
    return sql, args, result_columns


def install() -> None:
    PostgresConnection._compile = _compile  # type: ignore[method-assign]
