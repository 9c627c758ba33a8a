"""Reuse compiled SQL on both backends: `databases` compiles every statement anew.

SQLAlchemy's engine keeps a compiled cache keyed by the statement's cache key; the
`databases` backends bypass it, and compiling cost about half of the CPU of an
endorsement (eleven statements) on PostgreSQL, and a ninth of the test suite's CPU on
SQLite. This does what the engine does: one compilation per statement shape, then the
parameters of each call are extracted from its cache key. Statements whose SQL depends
on their values (expanding IN lists, which are rendered inline) and DDL are compiled as
before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, cast

from databases.backends.postgres import PostgresConnection
from databases.backends.sqlite import CompilationContext, SQLiteConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.ddl import DDLElement

_MAX_ENTRIES = 2000
_cache: OrderedDict[Any, tuple[Any, str, list[str], Any]] = OrderedDict()
_lock = threading.Lock()
_original_compile = PostgresConnection._compile
_original_sqlite_compile = SQLiteConnection._compile


def _dialect_key(dialect: Any) -> tuple[Any, ...]:
    """What a statement's compiled form depends on besides the statement: the dialect's kind and
    settings, not the instance (each `Database` makes its own; a test makes one an app)."""
    return (
        type(dialect),
        dialect.paramstyle,
        dialect.server_version_info,
        dialect.insert_returning,
        dialect.supports_native_decimal,  # the SQLite backend turns it off: it changes bind processors
    )


def _compile(self: PostgresConnection, query: ClauseElement) -> tuple[str, list[Any], Any]:
    if isinstance(query, DDLElement) or not isinstance(query, ClauseElement):
        return _original_compile(self, query)
    key = query._generate_cache_key()
    if key is None:
        return _original_compile(self, query)
    cache_key = (_dialect_key(self._dialect), key.key)
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


def _sqlite_compile(self: SQLiteConnection, query: ClauseElement) -> tuple[str, list[Any], Any, Any]:
    """The SQLite backend's `_compile`, from the cache: `?` placeholders in `positiontup` order,
    and the execution context its result rows are read with."""
    if isinstance(query, DDLElement) or not isinstance(query, ClauseElement):
        return _original_sqlite_compile(self, query)  # type: ignore[return-value]
    key = query._generate_cache_key()
    if key is None:
        return _original_sqlite_compile(self, query)  # type: ignore[return-value]
    cache_key = (_dialect_key(self._dialect), key.key)
    with _lock:
        entry = _cache.get(cache_key)
        if entry is not None:
            _cache.move_to_end(cache_key)
    if entry is None:
        compiled = cast(SQLCompiler, query.compile(dialect=self._dialect, cache_key=key))
        if (
            any(bind.expanding for bind in compiled.binds.values())
            or compiled.literal_execute_params
            or compiled.positiontup is None
        ):
            return _original_sqlite_compile(self, query)  # type: ignore[return-value]
        struct = (
            compiled._result_columns,
            compiled._ordered_columns,
            compiled._textual_ordered_columns,
            compiled._ad_hoc_textual,
            compiled._loose_column_name_matching,
        )
        entry = (compiled, compiled.string, list(compiled.positiontup), struct)
        with _lock:
            _cache[cache_key] = entry
            if len(_cache) > _MAX_ENTRIES:
                _cache.popitem(last=False)
    compiled, sql, names, struct = entry
    params = compiled.construct_params(extracted_parameters=key.bindparams)
    processors: dict[str, Any] = compiled._bind_processors  # type: ignore[assignment]  # a dict at run time
    args = [processors[name](params[name]) if name in processors else params[name] for name in names]
    context = self._dialect.execution_ctx_cls()
    context.dialect = self._dialect
    context.result_column_struct = struct  # type: ignore[attr-defined]
    return sql, args, struct[0], CompilationContext(context)


def install() -> None:
    PostgresConnection._compile = _compile  # type: ignore[method-assign]
    SQLiteConnection._compile = _sqlite_compile  # type: ignore[method-assign,assignment]
