"""Per-tenant GST registration printed on invoices and credit notes (`tenant_billing`); without a
row the deployment-wide `INVOICE_SUPPLIER_*` settings apply."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from cloud.billing.models import TenantBilling
from cloud.errors import ApiError
from cloud.payments.schemas import Gstin, StateCode

# GST state codes (CBIC list); 97 = other territory, 99 = centre jurisdiction.
GST_STATES: dict[str, str] = {
    "01": "Jammu and Kashmir", "02": "Himachal Pradesh", "03": "Punjab", "04": "Chandigarh",
    "05": "Uttarakhand", "06": "Haryana", "07": "Delhi", "08": "Rajasthan", "09": "Uttar Pradesh",
    "10": "Bihar", "11": "Sikkim", "12": "Arunachal Pradesh", "13": "Nagaland", "14": "Manipur",
    "15": "Mizoram", "16": "Tripura", "17": "Meghalaya", "18": "Assam", "19": "West Bengal",
    "20": "Jharkhand", "21": "Odisha", "22": "Chhattisgarh", "23": "Madhya Pradesh", "24": "Gujarat",
    "26": "Dadra and Nagar Haveli and Daman and Diu", "27": "Maharashtra", "29": "Karnataka", "30": "Goa",
    "31": "Lakshadweep", "32": "Kerala", "33": "Tamil Nadu", "34": "Puducherry",
    "35": "Andaman and Nicobar Islands", "36": "Telangana", "37": "Andhra Pradesh", "38": "Ladakh",
    "97": "Other Territory", "99": "Centre Jurisdiction",
}  # fmt: skip


def state_name(code: str) -> str:
    return GST_STATES.get(code, code)


class TenantBillingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_name: str = Field(min_length=1, max_length=200)
    gstin: Gstin = Field(description="15 characters; format and check character are validated.")
    state_code: StateCode
    address: str = Field(default="", max_length=500)
    sac_code: str = Field(default="999799", pattern=r"^9997[0-9]{2}$")
    gst_rate_bp: int = Field(default=1800, ge=0, le=2800, strict=True, description="1800 = 18%.")

    @model_validator(mode="after")
    def _consistent(self) -> TenantBillingIn:
        if self.gstin is None:
            raise ValueError("gstin is required")
        if self.state_code not in GST_STATES:
            raise ValueError(f"unknown GST state code {self.state_code!r}")
        if self.gstin[:2] != self.state_code:
            raise ValueError("the GSTIN does not belong to that state (its first two digits)")
        return self


class TenantBillingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    legal_name: str
    gstin: str
    state_code: str
    address: str
    sac_code: str
    gst_rate_bp: int


def get_billing(session: Session, tenant_id: uuid.UUID) -> TenantBilling | None:
    return session.get(TenantBilling, tenant_id)


def require_billing(session: Session, tenant_id: uuid.UUID) -> TenantBilling:
    billing = get_billing(session, tenant_id)
    if billing is None:
        raise ApiError(404, "billing_not_configured", "no GST registration saved for this tenant yet")
    return billing


def put_billing(session: Session, tenant_id: uuid.UUID, body: TenantBillingIn) -> TenantBilling:
    """Create or replace the tenant's registration (the caller commits)."""
    values = body.model_dump()
    session.execute(
        insert(TenantBilling)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[TenantBilling.tenant_id], set_=values)
    )
    session.flush()
    billing = session.get(TenantBilling, tenant_id, populate_existing=True)
    assert billing is not None
    return billing
