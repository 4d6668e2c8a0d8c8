"""Billing tests run on the payment-flow rig: the cloud app behind uvicorn and the fake gateways."""

from tests.cloud.payflow.conftest import http, library, owner, payflow, student  # noqa: F401
