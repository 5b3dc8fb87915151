"""Raw SQL on the participants' hot paths (the vote, the JSON trial state): the cursor and the column readers.

Why prepared statements: measured on the reference machine (bench/prepared_lookup.py; bench/RESULTS.md, "The vote
path in raw SQL"), PostgreSQL spent ≈ 1.6 ms of CPU planning and running the vote's lookup on every vote and
≈ 0.2 ms running it prepared; the database's CPU per vote fell from ≈ 3.4 ms to ≈ 1.4-1.9 ms. Django leaves
psycopg's prepared statements off by default (a PgBouncer in transaction mode before 1.21 cannot keep them), so
they are used only here and can be turned off with the setting RAW_SQL_PREPARED_STATEMENTS (env
RAW_SQL_PREPARED_STATEMENTS=false).
"""
import functools
import json
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

T = TypeVar("T")


def hot_cursor():
    """A Django cursor (logged, errors wrapped as django.db errors) whose statements PostgreSQL prepares once per
    connection; on SQLite, or with RAW_SQL_PREPARED_STATEMENTS off, an ordinary connection.cursor()."""
    cursor = connection.cursor()  # the health check, the connection and the thread check, as for any query
    if connection.vendor != "postgresql" or not settings.RAW_SQL_PREPARED_STATEMENTS:
        return cursor
    cursor.close()
    raw = _preparing_cursor_class()(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


@functools.cache
def _preparing_cursor_class():
    """psycopg's server-side binding cursor as Django defines it, every statement prepared (psycopg keeps them per
    connection, by their text; a new connection after a restart prepares them again)."""
    from django.db.backends.postgresql.base import ServerBindingCursor  # psycopg is there only with PostgreSQL

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, **kwargs):
            return super().execute(query, params, prepare=True, **kwargs)

    return PreparingCursor


def on_kept_connection(work: Callable[[], T]) -> T:
    """work(), a hot path's transaction that may run twice (idempotent), without Django's per-request health check,
    and once more on a new connection when the kept one turns out dead (the database restarted since the last
    request), which is what the check is for.

    Why: with CONN_HEALTH_CHECKS Django sends SELECT 1 before each request's first query, a round trip that cost the
    vote ≈ 0.1 ms of the web server's CPU (bench/RESULTS.md). Here the work's own first statement is the check. A
    failure after that (the connection lost mid-vote, the commit's outcome unknown) is also safe to retry: the vote
    is idempotent. Any other database error, or a second failure, goes to webapp.middleware's 503. Inside a caller's
    transaction, on a new connection, or where checks are off or done for this request, work() runs as it is.
    """
    kept = connection.connection
    if kept is None or connection.in_atomic_block or not connection.health_check_enabled \
            or connection.health_check_done:
        return work()
    connection.health_check_done = True  # this request's check: work()'s first statement
    try:
        return work()
    except (OperationalError, InterfaceError):
        if connection.connection is kept:  # (when the rollback found it dead, Django has dropped it already)
            if connection.is_usable():
                raise  # the database answered: not a dead connection (a timeout, a deadlock); the middleware's 503
            connection.close()
        return work()  # on a new connection


def db_uuid(value) -> uuid.UUID:
    """A UUID column as a raw cursor reads it: uuid.UUID on PostgreSQL, 32 hex digits on SQLite."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def db_json(value):
    """A JSON column as a raw cursor reads it: text on both backends (Django registers no jsonb loader), parsed."""
    return json.loads(value) if isinstance(value, str) else value
