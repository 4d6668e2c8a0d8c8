"""Roles and their permissions (the seed's RBAC plus `library_owner`)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    STUDENT = "student"
    LIBRARY_STAFF = "library_staff"
    LIBRARY_OWNER = "library_owner"
    SUPER_ADMIN = "super_admin"


class Permission(StrEnum):
    READ_OWN_PROFILE = "read:own_profile"
    WRITE_OWN_PROFILE = "write:own_profile"
    READ_LIBRARIES = "read:libraries"
    WRITE_BOOKINGS = "write:bookings"
    READ_OWN_BOOKINGS = "read:own_bookings"
    READ_LIBRARY_DATA = "read:library_data"
    WRITE_LIBRARY_DATA = "write:library_data"
    READ_BOOKINGS = "read:bookings"
    READ_USERS = "read:users"
    REVIEW_KYC = "review:kyc"
    MANAGE_STAFF = "manage:staff"
    READ_AUDIT = "read:audit"
    READ_ALL = "read:all"
    WRITE_ALL = "write:all"
    ADMIN_SYSTEM = "admin:system"


_STUDENT = frozenset(
    {
        Permission.READ_OWN_PROFILE,
        Permission.WRITE_OWN_PROFILE,
        Permission.READ_LIBRARIES,
        Permission.WRITE_BOOKINGS,
        Permission.READ_OWN_BOOKINGS,
    }
)
_STAFF = _STUDENT | {
    Permission.READ_LIBRARY_DATA,
    Permission.WRITE_LIBRARY_DATA,
    Permission.READ_BOOKINGS,
    Permission.READ_USERS,
    Permission.REVIEW_KYC,
}
_OWNER = _STAFF | {Permission.MANAGE_STAFF, Permission.READ_AUDIT}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.STUDENT: _STUDENT,
    Role.LIBRARY_STAFF: frozenset(_STAFF),
    Role.LIBRARY_OWNER: frozenset(_OWNER),
    Role.SUPER_ADMIN: frozenset(Permission),
}

TENANT_ROLES = (Role.LIBRARY_OWNER, Role.LIBRARY_STAFF)


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]
