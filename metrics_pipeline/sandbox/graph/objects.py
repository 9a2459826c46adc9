"""The ad account and its campaigns, ad sets and ads."""

from __future__ import annotations

from typing import Any

from metrics_pipeline.sandbox.graph.errors import ApiError
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.paging import page
from metrics_pipeline.sandbox.graph.state import SandboxState
from metrics_pipeline.sandbox.render import format_time
from metrics_pipeline.sandbox.world import Account, AdObject

ALL_STATUSES = {
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "ADSET_PAUSED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "IN_PROCESS",
    "WITH_ISSUES",
}
HIDDEN_BY_DEFAULT = {"DELETED", "ARCHIVED"}


def known_account(state: SandboxState, account_id: str) -> Account:
    if account_id not in state.world.accounts:
        raise ApiError(
            400,
            100,
            f"(#100) Ad account act_{account_id} does not exist or "
            "you do not have permission to access it",
            subcode=33,
            error_type="GraphMethodException",
        )
    return state.world.account(account_id)


def status_filter(request: Request, level: str) -> set[str]:
    """The effective statuses asked for: all but deleted and archived unless filtered."""
    statuses = set(ALL_STATUSES - HIDDEN_BY_DEFAULT)
    for rule in request.json_param("filtering", []):
        if rule.get("field") == f"{level}.effective_status" and rule.get("operator") == "IN":
            statuses = set(rule.get("value") or [])
    return statuses


def account(state: SandboxState, request: Request, account_id: str) -> dict[str, Any]:
    spec = known_account(state, account_id).spec
    unknown_currency = "unknown_currency" in state.faults.data_faults(spec.account_id, None)
    return {
        "id": f"act_{spec.account_id}",
        "account_id": spec.account_id,
        "name": spec.name,
        "currency": "XYZ" if unknown_currency else spec.currency,
        "timezone_name": spec.timezone,
        "account_status": 1,
    }


def edge(state: SandboxState, request: Request, account_id: str, edge: str) -> dict[str, Any]:
    """One page of the account's campaigns, adsets or ads."""
    owner = known_account(state, account_id)
    objects = {"campaigns": owner.campaigns, "adsets": owner.adsets, "ads": owner.ads}[edge]
    statuses = status_filter(request, edge.rstrip("s"))
    fields = (request.param("fields") or "id,name").split(",")
    rows = [_object_fields(o, fields) for o in objects if o.effective_status in statuses]
    return page(state, request, rows)


def _object_fields(obj: AdObject, fields: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": obj.id,
        "name": obj.name,
        "status": obj.status,
        "configured_status": obj.status,
        "effective_status": obj.effective_status,
        "objective": obj.objective,
        "campaign_id": obj.campaign_id,
        "created_time": format_time(obj.created_time),
        "updated_time": format_time(obj.updated_time),
    }
    if obj.adset_id:
        values["adset_id"] = obj.adset_id
    if obj.daily_budget is not None:
        values["daily_budget"] = str(obj.daily_budget)
    if obj.lifetime_budget is not None:
        values["lifetime_budget"] = str(obj.lifetime_budget)
    return {k: v for k, v in values.items() if k in fields or k == "id"}
