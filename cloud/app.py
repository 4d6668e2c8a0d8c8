"""The cloud app factory: `create_app(settings)`.

Resources (engine, redis client, rate-limit storage, token keys) are created here, eagerly, so the
app also works under transports that skip lifespan events (httpx.ASGITransport); `close_app(app)`
releases them and runs at lifespan shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.cors import CORSMiddleware

from cloud import crypto
from cloud.analytics.router import router as analytics_router
from cloud.audit.router import router as audit_router
from cloud.billing.router import router as billing_router
from cloud.booking.extras_router import router as booking_extras_router
from cloud.booking.router import router as booking_router
from cloud.catalog.router import router as catalog_router
from cloud.config import CloudSettings
from cloud.dashboard.console.router import router as console_router
from cloud.dashboard.student.router import router as student_pages_router
from cloud.db import app_url, make_engine, make_session_factory
from cloud.desk.router import router as desk_router
from cloud.errors import install_error_handlers
from cloud.fleet.router import router as fleet_router
from cloud.health import router as health_router
from cloud.identity.otp import ConsoleOtpSender
from cloud.identity.passwords import configure_hasher
from cloud.identity.router import router as identity_router
from cloud.identity.tokens import TokenService
from cloud.kyc.router import router as kyc_router
from cloud.kyc.storage import EncryptedFileStore
from cloud.middleware import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    RequestMetrics,
    SecurityHeadersMiddleware,
    TrustedHostMiddleware,
)
from cloud.notifications.router import router as notifications_router
from cloud.openapi import install_openapi
from cloud.payments.router import router as payments_router
from cloud.ratelimit import RateLimitMiddleware, RateLimits
from cloud.search.router import router as search_router
from cloud.tenancy.router import router as tenancy_router

UPLOAD_PREFIXES = ("/api/v1/users/me/kyc",)


def create_app(settings: CloudSettings) -> FastAPI:
    """Build the API. `settings.database_url` must be set (see `cloud.bootstrap.ensure_database`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in anyio's thread pool (40 threads by default) and each holds a pooled
        # database connection: more threads than pooled connections only churned overflow
        # connections (a new PostgreSQL backend and SCRAM login per request under load). The
        # overflow stays for what holds a connection outside a thread (a session a dependency
        # closes after the response).
        to_thread.current_default_thread_limiter().total_tokens = settings.db_pool_size
        yield
        await close_app(app)

    configure_hasher(settings.password_hash_time_cost, settings.password_hash_memory_kib)
    app = FastAPI(title="StudySpot cloud", version="0.1.0", lifespan=lifespan)
    engine = make_engine(app_url(settings), pool_size=settings.db_pool_size)
    session_factory = make_session_factory(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.master_key = crypto.load_master_key(settings)
    app.state.pii = crypto.PiiCipher(app.state.master_key)
    app.state.redis = aioredis.Redis.from_url(settings.redis_url) if settings.redis_url else None
    app.state.rate_limits = RateLimits(settings)  # holds the storage: `limits` keeps weak refs only
    app.state.tokens = TokenService(settings, session_factory, app.state.master_key)
    app.state.metrics = RequestMetrics(CollectorRegistry())
    app.state.otp_sender = otp_sender(session_factory)
    app.state.document_store = EncryptedFileStore(settings.data_dir / "kyc", app.state.master_key)

    install_error_handlers(app)
    # First: a fleet's edges send most requests, and routes are matched router by router in this
    # order (no other router has a path under /api/v1/fleet). Then bookings, the students' busiest
    # writes (their paths overlap none of the routers they now precede: ~50 routes less to scan).
    app.include_router(fleet_router)
    app.include_router(booking_router)
    app.include_router(booking_extras_router)
    app.include_router(health_router)
    app.include_router(identity_router)
    app.include_router(tenancy_router)
    app.include_router(kyc_router)
    app.include_router(audit_router)
    app.include_router(catalog_router)
    app.include_router(search_router)
    app.include_router(notifications_router)
    app.include_router(payments_router)
    app.include_router(console_router)
    app.include_router(analytics_router)
    app.include_router(billing_router)
    app.include_router(desk_router)
    app.include_router(student_pages_router)
    _install_middleware(app, settings)
    install_openapi(app)
    return app


def otp_sender(session_factory: sessionmaker[Session]) -> Any:
    """Login codes go out as SMS through the notifications outbox when an SMS channel is set up;
    without one (the demo) they are written to the console."""
    from cloud.notifications.config import NotificationSettings
    from cloud.notifications.outbox import OutboxOtpSender

    if NotificationSettings().twilio is not None:
        return OutboxOtpSender(session_factory)
    return ConsoleOtpSender()


def _install_middleware(app: FastAPI, settings: CloudSettings) -> None:
    # added innermost first: metrics see the final status of everything above them
    app.add_middleware(
        RateLimitMiddleware, limits=app.state.rate_limits, user_of_token=app.state.tokens.user_of
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides=[(prefix, settings.max_upload_bytes) for prefix in UPLOAD_PREFIXES],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    if settings.trusted_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.hsts_enabled)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)


async def close_app(app: FastAPI) -> None:
    """Release the app's connections (idempotent)."""
    if app.state.redis is not None:
        await app.state.redis.aclose()
    app.state.engine.dispose()
