"""The SQLAlchemy metadata every feature's tables hang on, and shared column types."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stored as naive UTC on both backends, always handed back timezone-aware.

    SQLite has no time zones and PostgreSQL's `timestamptz` would come back aware:
    one spelling on disk keeps comparisons and migrations identical on both.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UTCDateTime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


def all_tables() -> sa.MetaData:
    """Import every feature's tables so the metadata is complete (Alembic, tests)."""
    from petition.abuse import tables as _abuse  # noqa: F401
    from petition.appeals import tables as _appeals  # noqa: F401
    from petition.audit import tables as _audit  # noqa: F401
    from petition.delivery import tables as _delivery  # noqa: F401
    from petition.dossiers import tables as _dossiers  # noqa: F401
    from petition.endorsements import tables as _endorsements  # noqa: F401
    from petition.identity import tables as _identity  # noqa: F401
    from petition.news import tables as _news  # noqa: F401
    from petition.operations import tables as _operations  # noqa: F401
    from petition.organisers import tables as _organisers  # noqa: F401
    from petition.outbox import tables as _outbox  # noqa: F401
    from petition.transparency import tables as _transparency  # noqa: F401

    return metadata
