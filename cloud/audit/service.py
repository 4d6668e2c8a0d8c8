"""Hash-chained, append-only audit log.

Rows are written only through the SQL function `audit_append` (SECURITY DEFINER; the API role has
no INSERT/UPDATE/DELETE on the table), in the caller's transaction, so an audited change and its
audit row commit together. Each tenant has its own chain (`chain` = tenant id, or 'platform');
each row stores the previous row's hash and its own SHA-256 over prev hash + fields, so an edited
or deleted row breaks the chain at that point (`verify_chain`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import bindparam

GENESIS_HASH = "0" * 64

_APPEND = text("SELECT audit_append(:tenant, :actor, :action, :target, :ip, :detail)").bindparams(
    bindparam("detail", type_=JSONB)
)

_ROWS = text(
    "SELECT id, chain, prev_hash, hash, audit_digest(prev_hash, chain, tenant_id, actor_id, action, "
    "target, ip, detail, occurred_at) AS expected FROM audit_log ORDER BY chain, id"
)


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
    problems: list[ChainProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(session: Session) -> AuditVerification:
    """Check every chain visible to the session (use the owner or `platform_scope` for all)."""
    result = AuditVerification()
    previous: dict[str, str] = {}
    for row in session.execute(_ROWS):
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
        previous[row.chain] = row.hash
    return result
