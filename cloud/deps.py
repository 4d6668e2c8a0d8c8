"""FastAPI dependencies: settings, DB sessions, the authenticated principal, permission checks.

Dependencies that do no blocking I/O are `async def` so FastAPI runs them on the event loop
instead of hopping to the threadpool. `get_session` too: making a session does no I/O, and closing
one only does when it still holds a connection (then it hops to the threadpool).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from cloud.config import CloudSettings
from cloud.db import platform_scope, tenant_scope
from cloud.errors import ApiError
from cloud.identity.roles import Permission, Role, permissions_of
from cloud.identity.tokens import AccessClaims, TokenInvalid, TokenService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestContext:
    """Who is calling from where, for audit rows."""

    ip: str
    user_agent: str


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: Role

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.role)

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


async def get_settings(request: Request) -> CloudSettings:
    settings: CloudSettings = request.app.state.settings
    return settings


async def get_token_service(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


async def get_request_context(request: Request) -> RequestContext:
    return RequestContext(
        ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:200],
    )


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session with NO scope: only tables without RLS are visible until a scope is set."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            # It holds a connection: closing rolls back over the network, in a thread outside the
            # shared limiter (as FastAPI exits sync dependencies): requests holding connections
            # while waiting for a thread that waits for a connection would deadlock.
            await to_thread.run_sync(_close, session, limiter=CapacityLimiter(1))
        else:  # committed (or never used): no connection is held, closing is bookkeeping
            _close(session)


def _close(session: Session) -> None:
    # Runs after the response went out: if the database went away meanwhile, the rollback on close
    # fails; SQLAlchemy has already invalidated that connection, and raising would cut the response.
    try:
        session.close()
    except (OperationalError, InterfaceError) as exc:
        log.warning("closing a session on a lost database connection: %s", type(exc.orig).__name__)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def current_claims(request: Request, tokens: TokenService = Depends(get_token_service)) -> AccessClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token")
    try:
        return tokens.verify(token.strip())
    except TokenInvalid as exc:
        raise _unauthorized(str(exc)) from exc


async def current_principal(claims: AccessClaims = Depends(current_claims)) -> Principal:
    return Principal(user_id=claims.user_id, tenant_id=claims.tenant_id, role=claims.role)


def require(*permissions: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold every permission listed."""

    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        missing = [p.value for p in permissions if not principal.can(p)]
        if missing:
            raise ApiError(403, "forbidden", "your role may not do this", {"missing": missing})
        return principal

    return check


def tenant_of(principal: Principal) -> uuid.UUID:
    """The caller's tenant; a super admin (or student) has none and may not act inside one."""
    if principal.tenant_id is None:
        raise ApiError(
            403,
            "tenant_required",
            "this action is done inside a tenant by its owner or staff; super admins use /api/v1/admin",
        )
    return principal.tenant_id


def require_tenant_member(*permissions: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """`require(...)` plus a tenant in the token. As a dependency it runs before the body is
    validated, so a super admin gets 403 `tenant_required`, not a 422 about the body."""
    has_permissions = require(*permissions)

    async def check(principal: Principal = Depends(has_permissions)) -> Principal:
        tenant_of(principal)
        return principal

    return check


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, "forbidden", "your role may not do this", {"roles": [r.value for r in roles]})
        return principal

    return check


async def scoped_session(
    principal: Principal = Depends(current_principal), session: Session = Depends(get_session)
) -> Session:
    """The caller's session under row-level security: their tenant (if any) and their user id."""
    tenant_scope(session, principal.tenant_id, principal.user_id)
    return session


async def platform_session(session: Session = Depends(get_session)) -> Session:
    """Cross-tenant session for the auth flows and super-admin routes (callers audit what they do)."""
    platform_scope(session)
    return session
