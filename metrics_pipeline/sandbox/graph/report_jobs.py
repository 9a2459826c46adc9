"""Async insight reports: start a job (POST insights), poll its run, page its result.

A job is done once `report_seconds` have passed, however often it is polled, unless a
REPORT_FAULTS fault makes it fail, stall or creep. Like Meta, the start is answered at once
(after the request is checked) and the rows are computed in the background.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from metrics_pipeline.sandbox.faults import REPORT_FAULTS
from metrics_pipeline.sandbox.graph.errors import ApiError, fault_error
from metrics_pipeline.sandbox.graph.insights import insight_rows, rows_to_compute
from metrics_pipeline.sandbox.graph.messages import Request
from metrics_pipeline.sandbox.graph.objects import known_account
from metrics_pipeline.sandbox.graph.paging import limit_of, page
from metrics_pipeline.sandbox.graph.state import SandboxState

# What a failed async report run carries since v25.0 (error_code is a signed int).
REPORT_FAILURE = {
    "error_code": -2,
    "error_message": "The report could not be generated",
    "error_subcode": 1487534,
    "error_user_title": "Report too large",
    "error_user_msg": "Ask for fewer days or fewer breakdowns and try again.",
}


def start(state: SandboxState, request: Request, account_id: str) -> dict[str, Any]:
    known_account(state, account_id)
    compute = rows_to_compute(state, request, account_id)  # checked now, like Meta does
    fault = state.faults.take("report", account_id, request.days_spanned(), REPORT_FAULTS)
    with state.lock:
        report_id = f"report_{len(state.reports) + 1}_{account_id}"
        state.reports[report_id] = {
            "account_id": account_id,
            "request": request,
            "polls": 0,
            "started": state.monotonic(),
            "computed": state.computing.submit(compute),  # the job's fixed result
            "fault": fault.kind if fault else None,
        }
    return {"report_run_id": report_id}


def _report(state: SandboxState, report_id: str) -> dict[str, Any]:
    try:
        return state.reports[report_id]
    except KeyError:
        raise ApiError(400, 100, f"(#100) Unknown report run {report_id}") from None


def status(state: SandboxState, request: Request, report_id: str) -> dict[str, Any]:
    """The report run as a poll sees it."""
    report = _report(state, report_id)
    report["polls"] += 1
    if report["fault"] == "report_failed":
        async_status, percent = "Job Failed", 0
    elif report["fault"] == "report_stalled":
        async_status, percent = "Job Running", 10
    elif report["fault"] == "report_creeping":
        async_status, percent = "Job Running", min(99, report["polls"])
    else:
        # Meta computes a job in the background: it is done once its time has passed,
        # however often it is polled.
        elapsed = state.monotonic() - report["started"]
        if elapsed >= state.report_seconds:
            _rows(report)  # done once its rows are, too
            async_status, percent = "Job Completed", 100
        else:
            share = int(100 * elapsed / state.report_seconds)
            async_status, percent = ("Job Started" if share < 10 else "Job Running"), share
    answer: dict[str, Any] = {
        "id": report_id,
        "account_id": report["account_id"],
        "async_status": async_status,
        "async_percent_completion": percent,
    }
    if report["fault"] == "report_failed":
        answer.update(REPORT_FAILURE)  # v25.0: a failed job says why
    return answer


def results(state: SandboxState, request: Request, report_id: str) -> dict[str, Any]:
    """One page of a report's result."""
    report = _report(state, report_id)
    _refuse_big_page(state, report, request)
    rows = _rows(report)
    if rows is None:
        # Read to the end once already: computed again (the result of the same request).
        rows = insight_rows(state, report["request"], report["account_id"])
        with state.lock:
            report["computed"] = rows
    answer = page(state, request, rows)
    if "next" not in answer.get("paging", {}):
        with state.lock:
            report["computed"] = None  # read to the end: free it (re-reading recomputes)
    return answer


def _rows(report: dict[str, Any]) -> list[dict] | None:
    """The job's rows, waiting for the background computation if it is still running;
    None once they were freed."""
    computed = report["computed"]
    return computed.result() if isinstance(computed, Future) else computed


def _refuse_big_page(state: SandboxState, report: dict[str, Any], request: Request) -> None:
    """reduce_data_page(s): the fault is taken when a report's results are first asked for;
    that report's first page (reduce_data_page) or every page (reduce_data_pages) is then
    refused while `limit` exceeds `max_limit`."""
    if "page_cap" not in report:
        fault = state.faults.take(
            "report", report["account_id"], kinds={"reduce_data_page", "reduce_data_pages"}
        )
        report["page_cap"] = (fault.max_limit, fault.kind == "reduce_data_pages") if fault else None
    if report["page_cap"] is None:
        return
    cap, every_page = report["page_cap"]
    if (every_page or not request.param("after")) and limit_of(request) > cap:
        raise fault_error("reduce_data")
