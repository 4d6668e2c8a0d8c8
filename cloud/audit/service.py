"""Hash-chained, append-only audit log.

Rows are written only through the SQL function `audit_append` (SECURITY DEFINER; the API role has
no INSERT/UPDATE/DELETE on the table), in the caller's transaction, so an audited change and its
audit row commit together. Each tenant has its own chain (`chain` = tenant id, or 'platform');
each row stores the previous row's hash and its own SHA-256 over prev hash + fields, so an edited
or deleted row breaks the chain at that point (`verify_chain`).

The hash covers `detail_sha256` (a digest of the detail), not the detail itself: the retention
job (`purge_detail`) nulls old details (PII) and the chain still verifies, while a detail that is
still present must match its digest. A rewrite of a whole chain from the database is caught by the
external anchors (`cloud.audit.anchor`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Row, Text, cast, column, or_, select, table, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import bindparam

GENESIS_HASH = "0" * 64

_APPEND = text("SELECT audit_append(:tenant, :actor, :action, :target, :ip, :detail)").bindparams(
    bindparam("detail", type_=JSONB)
)

_ROWS = text(
    "SELECT id, chain, prev_hash, hash, audit_digest_v2(prev_hash, chain, tenant_id, actor_id, action, "
    "target, ip, detail_sha256, occurred_at) AS expected, detail IS NULL AS purged, "
    "detail IS NULL OR audit_detail_digest(detail) = detail_sha256 AS detail_ok "
    "FROM audit_log ORDER BY chain, id"
)
_PURGE_DETAIL = text("SELECT audit_purge_detail(:before)")


def record(
    session: Session,
    action: str,
    *,
    tenant_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    target: str = "",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one audit row in the session's current transaction; returns its id."""
    row_id = session.execute(
        _APPEND,
        {
            "tenant": tenant_id,
            "actor": actor_id,
            "action": action,
            "target": target,
            "ip": ip,
            "detail": detail or {},
        },
    ).scalar_one()
    return int(row_id)


@dataclass
class ChainProblem:
    chain: str
    row_id: int
    problem: str


@dataclass
class AuditVerification:
    rows_checked: int = 0
    chains: int = 0
    purged_details: int = 0
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    session: Session, anchored: Mapping[str, tuple[int, str]] | None = None
) -> AuditVerification:
    """Check every chain visible to the session (use the owner or `platform_scope` for all).
    `anchored`: chain -> (row id, hash) from an external anchor; each such row must still exist
    with that hash (a chain rewritten from the database fails here)."""
    result = AuditVerification()
    previous: dict[str, str] = {}
    pending = dict(anchored or {})
    for row in session.execute(_ROWS):
        _check_anchored(result, pending, row)
        result.rows_checked += 1
        expected_prev = previous.get(row.chain)
        if expected_prev is None:
            result.chains += 1
            expected_prev = GENESIS_HASH  # a chain's first row starts from genesis
        if row.prev_hash != expected_prev:
            result.problems.append(
                ChainProblem(row.chain, row.id, "previous hash does not match (row deleted or reordered)")
            )
        if row.hash != row.expected:
            result.problems.append(ChainProblem(row.chain, row.id, "row hash does not match (row edited)"))
        if not row.detail_ok:
            result.problems.append(
                ChainProblem(row.chain, row.id, "detail does not match its digest (edited)")
            )
        result.purged_details += int(row.purged)
        previous[row.chain] = row.hash
        result.heads[row.chain] = (row.id, row.hash)
    for chain, (row_id, _) in sorted(pending.items()):
        result.problems.append(
            ChainProblem(chain, row_id, "anchored row is missing (chain truncated or rewritten)")
        )
    return result


def _check_anchored(result: AuditVerification, pending: dict[str, tuple[int, str]], row: Row[Any]) -> None:
    anchored = pending.get(row.chain)
    if anchored is None or anchored[0] != row.id:
        return
    del pending[row.chain]
    if anchored[1] != row.hash:
        result.problems.append(
            ChainProblem(row.chain, row.id, "hash differs from the external anchor (chain rewritten)")
        )


def purge_detail(session: Session, before: dt.datetime) -> int:
    """Null the detail of rows older than `before` (retention; not in the future); their hashes stay
    verifiable. The database function records the purge on the platform chain; the caller commits."""
    return int(session.execute(_PURGE_DETAIL, {"before": before}).scalar_one())


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the platform audit search; every one is optional."""

    q: str | None = None
    tenant_id: uuid.UUID | None = None
    action: str | None = None
    since: dt.datetime | None = None
    limit: int = 100


_AUDIT = table(
    "audit_log",
    *(column(name) for name in ("id", "tenant_id", "actor_id", "action", "target", "ip", "occurred_at")),
    column("detail", JSONB),
)
_USERS = table("users", column("id"), column("email"))


def _text_matches(query: str) -> ColumnElement[bool]:
    fields = (_AUDIT.c.action, _AUDIT.c.target, _AUDIT.c.ip, cast(_AUDIT.c.detail, Text), _USERS.c.email)
    return or_(
        *(cast(field, Text).icontains(query, autoescape=True) for field in fields),
        cast(_AUDIT.c.actor_id, Text) == query,
    )


def search(session: Session, query: AuditQuery) -> Sequence[Row[Any]]:
    """Newest first. `q` matches action, target, ip, detail text or the actor's email
    (case-insensitive substring) or the actor id; `action` matches exactly or as a dotted prefix
    (`tenant` finds `tenant.suspend`). Needs `platform_scope` to see every chain; under a tenant
    scope RLS narrows it to that tenant."""
    statement = (
        select(*_AUDIT.c, _USERS.c.email.label("actor_email"))
        .select_from(_AUDIT.outerjoin(_USERS, _USERS.c.id == _AUDIT.c.actor_id))
        .order_by(_AUDIT.c.id.desc())
        .limit(query.limit)
    )
    if query.q:
        statement = statement.where(_text_matches(query.q))
    if query.tenant_id is not None:
        statement = statement.where(_AUDIT.c.tenant_id == query.tenant_id)
    if query.action:
        prefix = query.action.rstrip(".") + "."
        statement = statement.where(
            or_(_AUDIT.c.action == query.action, _AUDIT.c.action.startswith(prefix, autoescape=True))
        )
    if query.since is not None:
        statement = statement.where(_AUDIT.c.occurred_at >= query.since)
    return session.execute(statement).all()
