"""What each role may do in a tenant: the one table the pages, the API and the API tokens all ask.

Owners may do everything. Members view and operate stores (launch, retry) but cannot read store
credentials, delete stores or manage API tokens: those reveal secrets, destroy data, or mint
credentials that outlive the member's access. A read-only token may only view, whatever its role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from platform_site.errors import ApplicationError
from stores.choices import MembershipRole
from stores.models import Membership, Tenant


class Action(StrEnum):
    VIEW = "view"  # stores, their timelines, the plan
    LAUNCH = "launch"  # request a new store
    RETRY = "retry"  # retry a failed store
    DELETE = "delete"  # tear a store down
    REVEAL_CREDENTIALS = "reveal_credentials"  # read a store's admin login
    MANAGE_TOKENS = "manage_tokens"  # create, list and revoke API tokens
    MANAGE_DOMAINS = "manage_domains"  # add, check and remove a store's custom domains
    MANAGE_WEBHOOKS = "manage_webhooks"  # add, rotate, enable and delete webhook endpoints; resend
    SUSPEND = "suspend"  # pause a store, and resume one the organisation itself paused
    MANAGE_BACKUPS = "manage_backups"  # back up now, restore a backup (replaces a store's data)


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    MembershipRole.OWNER: frozenset(Action),
    MembershipRole.MEMBER: frozenset({Action.VIEW, Action.LAUNCH, Action.RETRY}),
}
READ_ONLY_ACTIONS = frozenset({Action.VIEW})

# Why a control is disabled, in the words the pages show next to it.
_REFUSALS = {
    Action.LAUNCH: "Only owners can launch stores.",
    Action.RETRY: "Only owners can retry stores.",
    Action.DELETE: "Only the organisation's owners can delete stores.",
    Action.REVEAL_CREDENTIALS: "Only the organisation's owners can see store credentials.",
    Action.MANAGE_TOKENS: "Only the organisation's owners can create or revoke API tokens.",
    Action.MANAGE_DOMAINS: "Only the organisation's owners can add or remove domains.",
    Action.MANAGE_WEBHOOKS: "Only the organisation's owners can manage webhook endpoints.",
    Action.SUSPEND: "Only the organisation's owners can pause or resume stores.",
    Action.MANAGE_BACKUPS: "Only the organisation's owners can back up or restore stores.",
}


class ActionNotAllowed(ApplicationError):
    """The caller belongs to the tenant but their role (or their token) does not allow this."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class TenantAccess:
    """Who is acting for which tenant, with which role; `read_only` for a read-only API token."""

    tenant: Tenant
    role: str
    read_only: bool = False

    @property
    def actions(self) -> frozenset[Action]:
        allowed = ROLE_ACTIONS.get(self.role, frozenset())
        return allowed & READ_ONLY_ACTIONS if self.read_only else allowed

    def can(self, action: Action) -> bool:
        return action in self.actions

    def refusal(self, action: Action) -> str:
        """Why `action` is not allowed ("" when it is)."""
        if self.can(action):
            return ""
        if self.read_only:
            return "This API token is read-only."
        return _REFUSALS.get(action, "Your role does not allow this.")

    @property
    def refusals(self) -> dict[str, str]:
        """action -> reason it is refused ("" when allowed), for templates."""
        return {action.value: self.refusal(action) for action in Action}


def access_require(*, access: TenantAccess, action: Action) -> None:
    """Raise ActionNotAllowed (403) unless `access` allows `action`."""
    if not access.can(action):
        raise ActionNotAllowed(access.refusal(action))


def access_for_user(*, user: Any) -> TenantAccess | None:
    """A signed-in user's access on the pages: their first organisation and their role in it."""
    if not getattr(user, "is_authenticated", False):
        return None
    membership = (
        Membership.objects.filter(user=user)
        .select_related("tenant__plan")
        .order_by("created_at", "id")
        .first()
    )
    return TenantAccess(tenant=membership.tenant, role=membership.role) if membership else None


def access_for_membership(
    *, user: Any, tenant_id: int, minted_role: str, read_only: bool
) -> TenantAccess | None:
    """An API token's access: its tenant, limited to the role it was minted with and to the role the
    user holds now. None once the user is no longer a member of that tenant."""
    membership = (
        Membership.objects.filter(user=user, tenant_id=tenant_id).select_related("tenant__plan").first()
    )
    if membership is None:
        return None
    current, minted = (
        ROLE_ACTIONS.get(membership.role, frozenset()),
        ROLE_ACTIONS.get(minted_role, frozenset()),
    )
    # The weaker of the two roles: a demoted owner's old token loses the owner's powers too.
    role = minted_role if minted <= current else membership.role
    return TenantAccess(tenant=membership.tenant, role=role, read_only=read_only)
