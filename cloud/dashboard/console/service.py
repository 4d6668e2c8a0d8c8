"""Data the dashboard needs that no other domain lists: the caller's own libraries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.catalog.models import LibraryRecord


def tenant_libraries(session: Session, tenant_id: uuid.UUID) -> Sequence[LibraryRecord]:
    """Every library of the tenant, by name (closed ones too: their history still counts)."""
    statement = select(LibraryRecord).where(LibraryRecord.tenant_id == tenant_id)
    return session.scalars(statement.order_by(LibraryRecord.name, LibraryRecord.id)).all()
