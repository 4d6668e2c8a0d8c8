"""KYC: upload (type checked by content, size-limited, encrypted at rest), review, my documents."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud import crypto
from cloud.audit import service as audit
from cloud.errors import ApiError
from cloud.kyc.models import KycDocument
from cloud.kyc.schemas import Decision, DocumentType, KycOut
from cloud.kyc.storage import DocumentStore
from cloud.models_common import utcnow

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
DOCUMENT_NUMBER = re.compile(r"[A-Z0-9]{4,32}")


def sniff_content_type(data: bytes) -> str:
    """The document's real type from its first bytes; the client's filename and header are ignored."""
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    raise ApiError(415, "unsupported_media_type", "upload a PDF, JPEG or PNG document")


def normalize_document_number(raw: str) -> str:
    number = re.sub(r"[\s-]", "", raw).upper()
    if not DOCUMENT_NUMBER.fullmatch(number):
        raise ApiError(422, "invalid_document_number", "document number must be 4-32 letters or digits")
    return number


def mask(last4: str) -> str:
    return "*" * 8 + last4


def to_out(doc: KycDocument) -> KycOut:
    return KycOut(
        id=doc.id,
        user_id=doc.user_id,
        tenant_id=doc.tenant_id,
        document_type=doc.document_type,
        document_number_masked=mask(doc.document_number_last4),
        content_type=doc.content_type,
        size_bytes=doc.size_bytes,
        status=doc.status,
        reason=doc.reason,
        created_at=doc.created_at,
        reviewed_at=doc.reviewed_at,
    )


def submit_document(
    session: Session,
    store: DocumentStore,
    master_key: bytes,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    document_type: DocumentType,
    document_number: str,
    data: bytes,
    max_bytes: int,
    ip: str,
) -> KycDocument:
    if not data:
        raise ApiError(422, "empty_upload", "the uploaded file is empty")
    if len(data) > max_bytes:
        raise ApiError(413, "payload_too_large", f"document exceeds {max_bytes} bytes")
    content_type = sniff_content_type(data)
    number = normalize_document_number(document_number)
    doc_id = uuid.uuid4()
    storage_key = f"kyc-{doc_id.hex}"
    doc = KycDocument(
        id=doc_id,
        user_id=user_id,
        tenant_id=tenant_id,
        document_type=document_type.value,
        document_number_enc=crypto.encrypt(master_key, number.encode(), doc_id.bytes),
        document_number_last4=number[-4:],
        content_type=content_type,
        size_bytes=len(data),
        storage_key=storage_key,
    )
    store.put(storage_key, data)
    try:
        with session.begin_nested():
            session.add(doc)
            session.flush()
        audit.record(
            session, "kyc.submit", tenant_id=tenant_id, actor_id=user_id, target=f"kyc:{doc_id}", ip=ip
        )
        session.commit()
    except IntegrityError as exc:
        store.delete(storage_key)  # nothing half-written
        raise ApiError(422, "unknown_tenant", "tenant does not exist") from exc
    except Exception:
        store.delete(storage_key)
        raise
    return doc


def my_documents(session: Session, user_id: uuid.UUID) -> Sequence[KycDocument]:
    return session.scalars(
        select(KycDocument).where(KycDocument.user_id == user_id).order_by(KycDocument.created_at)
    ).all()


def documents_for_review(session: Session, tenant_id: uuid.UUID, status: str | None) -> Sequence[KycDocument]:
    query = select(KycDocument).where(KycDocument.tenant_id == tenant_id).order_by(KycDocument.created_at)
    if status:
        query = query.where(KycDocument.status == status)
    return session.scalars(query).all()


def decide(
    session: Session,
    doc_id: uuid.UUID,
    decision: Decision,
    reason: str | None,
    *,
    reviewer_id: uuid.UUID,
    tenant_id: uuid.UUID,
    ip: str,
) -> KycDocument:
    doc = session.get(KycDocument, doc_id, with_for_update=True)
    if doc is None or doc.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "document not found")
    if doc.status != "pending":
        raise ApiError(409, "already_decided", f"document is already {doc.status}")
    if decision is Decision.REJECTED and not (reason and reason.strip()):
        raise ApiError(422, "reason_required", "a rejection needs a reason")
    doc.status = decision.value
    doc.reason = reason.strip() if reason else None
    doc.reviewed_by = reviewer_id
    doc.reviewed_at = utcnow()
    audit.record(
        session,
        "kyc.decision",
        tenant_id=tenant_id,
        actor_id=reviewer_id,
        target=f"kyc:{doc.id}",
        ip=ip,
        detail={"decision": decision.value, "user": str(doc.user_id)},
    )
    session.commit()
    return doc


def read_document_number(doc: KycDocument, master_key: bytes) -> str:
    return crypto.decrypt(master_key, doc.document_number_enc, doc.id.bytes).decode()
