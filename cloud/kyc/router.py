"""Thin routes: KYC upload and my documents; staff review; the digital student ID card."""

from __future__ import annotations

import io
import uuid

import segno
from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cloud.config import CloudSettings
from cloud.deps import (
    Principal,
    RequestContext,
    current_principal,
    get_request_context,
    get_settings,
    require,
    scoped_session,
)
from cloud.errors import ApiError
from cloud.identity.roles import Permission
from cloud.kyc import service
from cloud.kyc.schemas import DecisionIn, DocumentType, KycOut
from cloud.kyc.storage import DocumentStore
from cloud.openapi import errors

router = APIRouter(tags=["kyc"])


def get_document_store(request: Request) -> DocumentStore:
    store: DocumentStore = request.app.state.document_store
    return store


@router.post("/api/v1/users/me/kyc", status_code=201, response_model=KycOut, responses=errors(415))
async def upload_document(
    request: Request,
    document: UploadFile = File(...),
    document_type: DocumentType = Form(...),
    document_number: str = Form(..., max_length=64),
    tenant_id: uuid.UUID | None = Form(None),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(scoped_session),
    settings: CloudSettings = Depends(get_settings),
    store: DocumentStore = Depends(get_document_store),
    ctx: RequestContext = Depends(get_request_context),
) -> KycOut:
    data = await document.read(settings.max_upload_bytes + 1)
    doc = await run_in_threadpool(
        service.submit_document,
        session,
        store,
        request.app.state.master_key,
        user_id=principal.user_id,
        tenant_id=tenant_id,
        document_type=document_type,
        document_number=document_number,
        data=data,
        max_bytes=settings.max_upload_bytes,
        ip=ctx.ip,
    )
    return service.to_out(doc)


@router.get("/api/v1/users/me/kyc", response_model=list[KycOut])
def my_documents(
    principal: Principal = Depends(current_principal), session: Session = Depends(scoped_session)
) -> list[KycOut]:
    return [service.to_out(doc) for doc in service.my_documents(session, principal.user_id)]


def _tenant(principal: Principal) -> uuid.UUID:
    if principal.tenant_id is None:
        raise ApiError(403, "tenant_required", "this action needs a tenant membership")
    return principal.tenant_id


@router.get("/api/v1/tenant/kyc", response_model=list[KycOut])
def review_queue(
    status: str | None = Query(None, pattern="^(pending|verified|rejected)$"),
    principal: Principal = Depends(require(Permission.REVIEW_KYC)),
    session: Session = Depends(scoped_session),
) -> list[KycOut]:
    docs = service.documents_for_review(session, _tenant(principal), status)
    return [service.to_out(doc) for doc in docs]


@router.post("/api/v1/tenant/kyc/{document_id}/decision", response_model=KycOut)
def decide(
    document_id: uuid.UUID,
    body: DecisionIn,
    principal: Principal = Depends(require(Permission.REVIEW_KYC)),
    session: Session = Depends(scoped_session),
    ctx: RequestContext = Depends(get_request_context),
) -> KycOut:
    doc = service.decide(
        session,
        document_id,
        body.decision,
        body.reason,
        reviewer_id=principal.user_id,
        tenant_id=_tenant(principal),
        ip=ctx.ip,
    )
    return service.to_out(doc)


@router.get("/api/v1/users/me/id-card.png", response_class=Response)
def id_card(principal: Principal = Depends(current_principal)) -> Response:
    """Digital student ID: a QR code of the member id."""
    buffer = io.BytesIO()
    segno.make(f"studyspot:member:{principal.user_id}", error="m").save(buffer, kind="png", scale=8, border=4)
    return Response(buffer.getvalue(), media_type="image/png")
