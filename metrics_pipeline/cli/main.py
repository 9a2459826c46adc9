"""`metrics-pipeline`: the demo, windowed materialisation and the sandbox server."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from metrics_pipeline.cli.stop import Stopped, exit_now, run_stoppable, tell

DEMO_DAYS = 42
# Dagster's own settings for runs over many partitions (docs/deployment.md): write the
# per-partition materializations in batches, and plan a ranged run with one event per
# asset instead of one per partition. Without them a 90-day backfill of 20 clients
# spends about a minute on thousands of single-row event writes.
RANGED_RUN_EVENT_SETTINGS = {
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}


def _data_dir() -> Path:
    return Path.cwd() / ".metrics_pipeline"


# Variables the demo never reads: it runs on its own sandbox, instance and warehouse, so it
# cannot write sandbox data into a deployment's stores.
DEMO_IGNORES = (
    "DAGSTER_HOME",
    "DAGSTER_PG_URL",
    "METRICS_WAREHOUSE_URL",
    "METRICS_CLIENTS_FILE",
    "METRICS_HISTORY_START",
    "METRICS_AS_OF",
    "METRICS_AUTOMATION",
    "META_API_BASE_URL",
    "META_API_VERSION",
    "META_ACCESS_TOKEN",
    "META_APP_SECRET",
    "METRICS_FX_RATES_URL",
    "METRICS_REPORTING_CURRENCY",
    "METRICS_ALERT_WEBHOOK_URL",
    "METRICS_ALERT_SMTP_HOST",
)


def _ensure_dagster_home(given: str | None) -> Path:
    """DAGSTER_HOME, or a local folder so the runs outlive the process for the UI."""
    home = Path(given or _data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not given:
        # Its own folders are private even when an older version created them open; a
        # given DAGSTER_HOME's permissions are its owner's choice.
        for folder in (home.parent, home):
            folder.chmod(0o700)
    settings = home / "dagster.yaml"
    if not given and not settings.exists():
        # The local instance this command creates: embedded storage, no usage reporting.
        settings.write_text("telemetry:\n  enabled: false\n")
    return home


def _open_instance(home: Path):
    """The Dagster instance of `home` (its dagster.yaml), without usage reporting."""
    from dagster import DagsterInstance

    # local_temp on a given folder is the instance DAGSTER_HOME=<folder> would load.
    return DagsterInstance.local_temp(str(home), overrides={"telemetry": {"enabled": False}})


def _pool_storage_connections(instance) -> None:
    """Keep the instance's database connections open for this command's runs.

    dagster-postgres opens a new connection for every event it stores unless told it runs
    in a long-lived process, as the webserver and daemon do; a backfill stores hundreds of
    events, each of which would otherwise pay a connection's start-up in PostgreSQL. No
    statement timeout (0): a run's own queries take as long as they need. Embedded storage
    ignores this."""
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)


# Objects allocated before the garbage collector looks at its youngest generation: at
# Python's default (700) a backfill collects thousands of times while it builds rows that
# live a few milliseconds.
YOUNG_OBJECTS_PER_COLLECTION = 50_000


@contextlib.contextmanager
def _settled_heap() -> Iterator[None]:
    """Inside, what is loaded by now (Dagster, pandas, the definitions, the instance: objects
    that live as long as the command) stays out of the garbage collector's passes, and it
    collects less often. A full pass otherwise walks that whole heap again each time the
    runs have allocated a quarter of it anew: seconds of the pipeline's CPU in a 90-day
    backfill (docs/performance.md). The collector is as it was again after."""
    import gc

    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS_PER_COLLECTION, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _quiet_dagster() -> None:
    import logging
    import warnings

    import dagster

    for category in (dagster.BetaWarning, dagster.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    logging.getLogger("dagster").setLevel(logging.ERROR)


@contextlib.contextmanager
def _ranged_run_event_settings():
    """RANGED_RUN_EVENT_SETTINGS for the runs of this command, then the environment as it was.

    Dagster reads these two only from the process environment, while it records events; a
    variable already set wins."""
    added = {k: v for k, v in RANGED_RUN_EVENT_SETTINGS.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _check_summary(instance, run_ids: list[str], run_failed: bool) -> str:
    """One line on the asset checks these runs evaluated (ranged results, not per day):
    failed checks (ERROR severity) apart from warnings (WARN: non-blocking)."""
    from dagster import AssetCheckSeverity, DagsterEventType

    passed, failed, warned = 0, set(), set()
    for run_id in run_ids:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=100_000
        ).records
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            if evaluation.partition is not None:
                continue  # the per-partition copies of a ranged result
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if evaluation.passed:
                passed += 1
            elif evaluation.severity == AssetCheckSeverity.WARN:
                warned.add(name)
            else:
                failed.add(name)
    warned -= failed
    if failed:
        verdict = f"failed: {', '.join(sorted(failed))}"
    elif run_failed:
        # Checks of the layers that never ran were not evaluated: nothing "passed" there.
        verdict = "none failed, but the run failed before every check ran"
    else:
        verdict = "none failed" if warned else "all passed"
    if warned:
        verdict += f"; {len(warned)} warning(s): {', '.join(sorted(warned))}"
    return f"checks: {passed + len(failed) + len(warned)} evaluated, {verdict}"


def _command() -> str:
    """How to run this command again from here: `metrics-pipeline` when that name on PATH
    is this installation's, else its path (`.venv/bin/metrics-pipeline` when not activated)."""
    import shutil

    script = Path(sys.executable).with_name("metrics-pipeline")
    found = shutil.which("metrics-pipeline")
    if found and Path(found).resolve() == script.resolve():
        return "metrics-pipeline"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def _resume_hint(start: date, end: date, clients: list[str] | None) -> str:
    chosen = "".join(f" --client {c}" for c in clients or [])
    return f"metrics-pipeline materialize --start {start} --end {end}{chosen}"


def _materialize(
    start: date,
    end: date,
    clients: list[str] | None,
    echo,
    verbose: bool,
    *,
    catalog,
    environ: Mapping[str, str],
    home: Path,
    check_meta: bool = True,
) -> int:
    """Check the settings of `environ`, then run the window with this process's environment
    set to `environ` for as long as the runs take.

    The runs' resources hold `EnvVar` names only, read in this process when each run starts:
    Dagster stores a job's resource configuration with the run, so a value given here would
    be kept in the instance (and shown by its webserver). The checks before any run read the
    same variables themselves."""
    from metrics_pipeline.cli import preflight
    from metrics_pipeline.definitions import build_definitions, default_resources

    settings = default_resources(environ, resolve=True)
    if check_meta:
        preflight.check_token(environ)
    preflight.check_warehouse(settings["warehouse"])
    if check_meta:
        preflight.check_meta_answers(settings["meta"], echo)
    with _process_environment(environ):
        defs = build_definitions(catalog, default_resources(environ))
        # Opened only now: a fresh instance takes seconds to create, and a failed check
        # above must be reported at once.
        with _open_instance(home) as instance:
            _pool_storage_connections(instance)
            with _settled_heap():
                return _run_window(defs, catalog, instance, start, end, clients, echo, verbose)


@contextlib.contextmanager
def _process_environment(environ: Mapping[str, str]) -> Iterator[None]:
    """This process's environment is `environ` inside, and as it was again after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _owner_only_files() -> Iterator[None]:
    """Files and folders created inside are readable by their owner only (0600 / 0700): the
    instance's run storage and the embedded warehouse hold an agency's clients' data."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _run_window(defs, catalog, instance, start, end, clients, echo, verbose: bool) -> int:
    from dagster import DagsterRunStatus, RunsFilter

    from metrics_pipeline.cli.console import cli_loggers
    from metrics_pipeline.runner import (
        INVOCATION_TAG,
        cancel_unfinished,
        materialize_window,
    )

    invocation = uuid.uuid4().hex

    def runs_in_flight() -> list[str]:
        unfinished = [
            DagsterRunStatus.QUEUED,
            DagsterRunStatus.NOT_STARTED,
            DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED,
        ]
        runs = instance.get_runs(RunsFilter(tags={INVOCATION_TAG: invocation}, statuses=unfinished))
        return [run.run_id for run in runs]

    def work():
        return materialize_window(
            defs,
            catalog,
            instance,
            start,
            end,
            clients,
            echo=echo,
            log_level="INFO" if verbose else "WARNING",
            loggers=cli_loggers(verbose),
            tags={INVOCATION_TAG: invocation},
        )

    try:
        with _ranged_run_event_settings():
            outcome = run_stoppable(
                work, on_stop=lambda: cancel_unfinished(instance, runs_in_flight())
            )
    except Stopped as stop:
        from metrics_pipeline.runner import stop_report
        from metrics_pipeline.stopping import requested_at

        # What the stop did, as the instance records it: never a claim it does not back.
        report = stop_report(instance, invocation, requested_at() or time.time())
        tell(
            f"Stopped ({signal.Signals(stop.signum).name}): {report.describe()}. Partitions "
            "stored are whole and kept, the others untouched; resume with: "
            f"{_resume_hint(start, end, clients)}"
        )
        if not stop.finished:
            exit_now(stop.exit_code)
        return stop.exit_code
    for note in outcome.notes:
        echo(f"note: {note}")
    run_ids = [stage.run_id for stage in outcome.stages]
    echo(_check_summary(instance, run_ids, not outcome.success))
    if not outcome.success:
        for error in outcome.errors:
            # A step's distinct problems come one per line (steps/partial.py).
            first, *more = error.splitlines()
            print("\n".join([f"FAILED {first}", *(f"  {line}" for line in more)]), file=sys.stderr)
        return 1
    return 0


def cmd_materialize(args: argparse.Namespace) -> int:
    _quiet_dagster()
    from metrics_pipeline.catalog import build_catalog
    from metrics_pipeline.cli import preflight
    from metrics_pipeline.definitions import check_settings
    from metrics_pipeline.warehouse.resource import WAREHOUSE_URL_ENV, sqlite_warehouse_url

    # Before anything is read, created or called: every setting, then the API version.
    check_settings(os.environ)
    preflight.check_api_version(os.environ, print)
    print(preflight.describe_clients_file(os.environ))
    catalog = build_catalog()
    home = _ensure_dagster_home(os.environ.get("DAGSTER_HOME"))
    print(f"Dagster instance: {home}")
    # Without a warehouse URL, the embedded warehouse lives beside the instance.
    warehouse_url = os.environ.get(WAREHOUSE_URL_ENV) or sqlite_warehouse_url(home)
    return _materialize(
        args.start,
        args.end,
        args.client or None,
        print,
        args.verbose,
        catalog=catalog,
        environ={**os.environ, WAREHOUSE_URL_ENV: warehouse_url},
        home=home,
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _print_summary(now: datetime, catalog, warehouse) -> None:
    from metrics_pipeline.domain.periods import local_today, week_start

    accounts = warehouse.read("meta_ad_accounts")
    zones = dict(zip(accounts["client_id"], accounts["timezone"], strict=True))
    print()
    print(f"{'client':<22} {'period':<26} {'spend':>14} {'reservations':>12} {'ROAS':>8}")
    for client in catalog.clients:
        tz = client.timezone or zones.get(client.id, "UTC")
        this_week = week_start(local_today(now, tz))
        last_week = this_week - timedelta(days=7)
        weekly = warehouse.read(
            "campaign_summaries",
            {"client_id": client.id, "summary_type": "weekly", "summary_date": last_week},
        )
        cache = warehouse.read("current_week_cache", {"client_id": client.id})
        for label, frame in ((f"week of {last_week}", weekly), ("week to date", cache)):
            if frame.empty:
                print(f"{client.id:<22} {label:<26} {'(not materialised)':>14}")
                continue
            row = frame.iloc[0]
            if label == "week to date":
                label += " (provisional)" if row["is_provisional"] else ""
            print(
                f"{client.id:<22} {label:<26} {row['total_spend']:>10,.2f} {row['currency']}"
                f" {int(row['reservations']):>12} {_fmt(row['roas']):>8}"
            )
    _print_portfolio(catalog, warehouse, now)
    print()
    print(f"Warehouse: {warehouse.display_url}")


def _print_portfolio(catalog, warehouse, now: datetime) -> None:
    """The agency total for the last full week and the month to date, and who is off pace."""
    from metrics_pipeline.checks.pacing import client_pace
    from metrics_pipeline.domain.periods import month_start, week_start
    from metrics_pipeline.domain.portfolio import TOTAL

    today = now.astimezone(UTC).date()
    last_week = week_start(today) - timedelta(days=7)
    print()
    for label, period_type, start in (
        (f"week of {last_week}", "week", last_week),
        ("month to date", "month_to_date", month_start(today)),
    ):
        rows = warehouse.read(
            "portfolio_kpis",
            {"period_type": period_type, "period_start": start, "client_id": TOTAL},
        )
        if rows.empty:
            empty = "(no whole day yet)" if start == today else "(not materialised)"
            print(f"{'all clients':<22} {label:<26} {empty:>14}")
            continue
        row = rows.iloc[0]
        print(
            f"{'all clients':<22} {label:<26} {row['total_spend']:>10,.2f} {row['currency']}"
            f" {int(row['reservations']):>12} {_fmt(row['roas']):>8}"
        )
    off = []
    for client in catalog.clients:
        mtd = warehouse.read(
            "client_kpi_rollups", {"client_id": client.id, "rollup_window": "month_to_date"}
        )
        if mtd.empty:
            continue
        row = mtd.iloc[0].to_dict()
        for o in client_pace(client, row)[0]:
            off.append(
                f"  {client.id}: {o.condition} projected {o.projected:,.2f} {row['currency'] or ''}"
                f" vs {o.limit}; days left: {o.days_left}"
            )
    print("off pace this month:" if off else "off pace this month: none")
    for line in off:
        print(line)


def _print_watch_alerts(home: Path) -> None:
    """The alerts of the tracking and anomaly checks, as check_alert_sensor sends them."""
    from metrics_pipeline.cli.incidents import watch_alerts

    with _open_instance(home) as instance:
        messages = watch_alerts(instance)
    print("\nalerts (check_alert_sensor sends each once, to the webhook and email configured):")
    for subject, body in messages:
        print(f"  {subject}")
        for line in body.splitlines():
            print(f"    {line}")
    if not messages:
        print("  none")


def _demo_environment() -> dict[str, str]:
    """This process's environment without the variables the demo never reads; says which
    ones it set aside."""
    ignored = [name for name in DEMO_IGNORES if name in os.environ]
    if ignored:
        names = ", ".join(ignored)
        print(f"demo: ignoring {names} (the demo uses only its own sandbox and folder)")
    return {k: v for k, v in os.environ.items() if k not in DEMO_IGNORES}


def cmd_demo(args: argparse.Namespace) -> int:
    _quiet_dagster()
    from metrics_pipeline.catalog import build_catalog
    from metrics_pipeline.cli.incidents import plant_demo_incidents
    from metrics_pipeline.config.clients import BUNDLED_CLIENTS_FILE, load_clients
    from metrics_pipeline.definitions import check_settings, default_resources
    from metrics_pipeline.domain.periods import last_live_day, week_start
    from metrics_pipeline.partitions import HISTORY_START_ENV
    from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
    from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer
    from metrics_pipeline.warehouse.resource import sqlite_warehouse_url

    environ = _demo_environment()
    check_settings(environ)  # the settings it keeps (limits, alert details), before any work
    home = _ensure_dagster_home(None)
    now = datetime.now(UTC)
    # Clients ahead of UTC already live in UTC tomorrow; the others are collected up to
    # their own today.
    end = last_live_day(now)
    # From the Monday six weeks back: the demo's partitions start where its history starts
    # (`--ui` reads the same), so every daily and weekly partition the UI shows is filled and
    # the completeness check counts no day before it; months are partitions from the first
    # one that begins inside the window.
    start = week_start(now.date() - timedelta(days=DEMO_DAYS))
    history_start = start.isoformat()
    catalog = build_catalog(load_clients(BUNDLED_CLIENTS_FILE), history_start)
    with SandboxServer(port=args.sandbox_port) as sandbox:
        planted = plant_demo_incidents(sandbox.state.world, now)
        # Where the demo runs is its own; the settings it keeps (limits, alert details)
        # come from the environment.
        demo_environ = {
            **environ,
            "DAGSTER_HOME": str(home),
            "METRICS_WAREHOUSE_URL": sqlite_warehouse_url(home),
            "METRICS_CLIENTS_FILE": str(BUNDLED_CLIENTS_FILE),
            "META_API_BASE_URL": sandbox.url,
            "META_ACCESS_TOKEN": SANDBOX_TOKEN,
            HISTORY_START_ENV: history_start,
            "METRICS_FX_RATES_URL": sandbox.url + FEED_PATH,
        }
        print(f"Meta sandbox: {sandbox.url}   Dagster instance: {home}")
        print(f"Materialising {start} .. {end} for the demo clients")
        for line in planted:
            print(f"  {line}")
        started = time.monotonic()
        status = _materialize(
            start,
            end,
            None,
            lambda line: print(f"  {line}"),
            args.verbose,
            catalog=catalog,
            environ=demo_environ,
            home=home,
            check_meta=False,
        )
        if status >= 128:  # stopped on request
            return status
        print(f"Done in {time.monotonic() - started:.1f}s")
        _print_watch_alerts(home)
        _print_summary(now, catalog, default_resources(demo_environ, resolve=True)["warehouse"])
        if status:
            return status
        print(
            "Open the UI on this instance with the sandbox still serving:\n"
            f"  {_command()} demo --ui     (then http://127.0.0.1:{args.ui_port})"
        )
        if args.ui:
            ui_environ = {
                **RANGED_RUN_EVENT_SETTINGS,
                "DAGSTER_DISABLE_TELEMETRY": "1",
                **demo_environ,
                # Schedules and sensors start switched off there: the UI shows them, and
                # each can be switched on under Automation.
                "METRICS_AUTOMATION": "off",
            }
            return _serve_ui(args.ui_port, ui_environ)
    return 0


def _serve_ui(port: int, environ: dict[str, str]) -> int:
    """`dagster dev` on the package's definitions, in `environ`, until Ctrl-C or SIGTERM,
    passed on to it."""
    # The dagster beside this interpreter, so it works from any folder and without the
    # virtual environment on PATH.
    ui = [sys.executable, "-m", "dagster", "dev", "-m", "metrics_pipeline.definitions"]
    ui += ["-h", "127.0.0.1", "-p", str(port)]
    print(f"Starting the Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops)")
    # dagster dev maps SIGTERM to its SIGINT handler: had this command inherited an ignored
    # SIGINT (started in the background by a shell), it would ignore both.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Its own process group: a Ctrl-C reaches it once, passed on from here, and what it
    # started can be ended as a group if it does not stop in time.
    # Started in the instance's folder: a dagster.yaml in the caller's folder (the repository's
    # production one) is then neither read nor warned about.
    # `dagster dev` says to use `dg dev`, which needs a dg project folder; the demo runs on
    # the installed package from any folder, so that one warning is silenced.
    env = dict(environ)
    env["PYTHONWARNINGS"] = ",".join(
        filter(None, [env.get("PYTHONWARNINGS"), "ignore:Function `dev_command` is superseded"])
    )
    child = subprocess.Popen(  # noqa: S603
        ui, env=env, cwd=environ["DAGSTER_HOME"], start_new_session=True
    )

    def ask_child_to_stop() -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # dagster dev shuts down as on Ctrl-C

    def make_sure_child_stopped() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # whatever of the group is still running

    try:
        return run_stoppable(
            child.wait,
            on_stop=make_sure_child_stopped,
            on_request=ask_child_to_stop,
            announce="shutting the Dagster UI down",
        )
    except Stopped as stop:
        print(f"Stopped ({signal.Signals(stop.signum).name}): the Dagster UI is shut down.")
        return stop.exit_code


def cmd_sandbox(args: argparse.Namespace) -> int:
    from metrics_pipeline.sandbox.ecb_rates import FEED_PATH
    from metrics_pipeline.sandbox.faults import parse_fault
    from metrics_pipeline.sandbox.server import SANDBOX_TOKEN, SandboxServer

    # Stops on Ctrl-C and on SIGTERM alike (a service manager or `kill` sends the latter),
    # from the moment it says it is serving.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with SandboxServer(port=args.port) as sandbox:
            for text in args.fault or []:
                fault = sandbox.inject(**parse_fault(text))
                print(f"Injecting {fault.kind} (count {fault.count}, route {fault.route})")
            for text in args.rate_limit or []:
                account, calls, window = text.split(":")
                sandbox.rate_limit(account, int(calls), float(window))
            print(f"Meta sandbox serving on {sandbox.url}")
            print("Point the pipeline at it with:")
            print(f"  export META_API_BASE_URL={sandbox.url}")
            print(f"  export META_ACCESS_TOKEN={SANDBOX_TOKEN}")
            print(f"  export METRICS_FX_RATES_URL={sandbox.url}{FEED_PATH}", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


DEMO_HELP = """Run the whole graph for the bundled demo clients from the Monday six weeks back:
starts the bundled Meta sandbox on loopback, materialises every layer with its
checks into its own instance and SQLite warehouse under
./.metrics_pipeline/dagster_home, and prints each client's last full week and week
to date, the agency total and who is off pace. It sets aside DAGSTER_HOME,
METRICS_WAREHOUSE_URL, META_* and the other deployment settings (and names those it
ignored), so it never writes into a deployment."""
MATERIALIZE_HELP = """Materialise every layer (ad objects, raw insights and daily KPIs, weekly and
monthly summaries, cache and rollups, exchange rates, portfolio) for a window of days, as
Dagster runs in the instance of DAGSTER_HOME (default ./.metrics_pipeline/dagster_home) and
the warehouse of METRICS_WAREHOUSE_URL. Before any run it checks every setting, the API
version, the clients file (METRICS_CLIENTS_FILE), META_ACCESS_TOKEN, the warehouse and the
Meta host, each failing with one line. Exits 1 naming what failed, 2 for a window or
client it cannot serve."""
SANDBOX_HELP = """Serve the bundled imitation of Meta's Graph API (and the ECB rates feed) on
loopback until Ctrl-C or SIGTERM, and print the variables that point the pipeline at it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metrics-pipeline", description=__doc__)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print Dagster's full logs and stack traces (default: off; also accepted after "
        "the command)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description)

    demo = command("demo", "run the whole graph on the bundled sandbox", DEMO_HELP)
    demo.add_argument(
        "--ui",
        action="store_true",
        help="then keep the sandbox serving and start the Dagster UI on the demo's instance, "
        "with schedules and sensors switched off, until Ctrl-C (default: off)",
    )
    demo.add_argument(
        "--ui-port", type=int, default=3000, help="port of the Dagster UI (default: 3000)"
    )
    demo.add_argument(
        "--sandbox-port",
        type=int,
        default=0,
        help="port of the bundled sandbox (default: 0, any free port)",
    )
    demo.set_defaults(func=cmd_demo)

    run = command("materialize", "materialise every layer for a window", MATERIALIZE_HELP)
    run.add_argument(
        "--start",
        type=date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="first day of the window, in each client's own timezone (required)",
    )
    run.add_argument(
        "--end",
        type=date.fromisoformat,
        required=True,
        metavar="YYYY-MM-DD",
        help="last day of the window, included (required)",
    )
    run.add_argument(
        "--client",
        action="append",
        metavar="ID",
        help="a client id of the clients file; repeatable (default: every client)",
    )
    run.set_defaults(func=cmd_materialize)

    sandbox = command("sandbox", "serve the Meta sandbox", SANDBOX_HELP)
    sandbox.add_argument(
        "--port", type=int, default=8765, help="port to serve on, on 127.0.0.1 (default: 8765)"
    )
    sandbox.add_argument(
        "--fault",
        action="append",
        metavar="KIND[:key=value,...]",
        help="inject a fault, e.g. throttle_insights:count=3,regain_minutes=0.5 or "
        "auth:count=-1,account=1000000002; the kinds are in metrics_pipeline/sandbox/faults.py; "
        "repeatable (default: none)",
    )
    sandbox.add_argument(
        "--rate-limit",
        action="append",
        metavar="ACCOUNT:CALLS:SECONDS",
        help="enforce a call limit on an account, e.g. 1000000001:60:300; repeatable "
        "(default: none)",
    )
    sandbox.set_defaults(func=cmd_sandbox)
    for each in (demo, run):
        each.add_argument(
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print Dagster's full logs and stack traces (default: off)",
        )
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors with a message a person can act on: printed as one line, no stack trace."""
    from metrics_pipeline.cli.preflight import SetupError
    from metrics_pipeline.config.clients import ClientsFileError
    from metrics_pipeline.env_settings import SettingError
    from metrics_pipeline.meta.errors import MetaApiError
    from metrics_pipeline.runner import WindowError
    from metrics_pipeline.warehouse.errors import WarehouseError

    return (SetupError, SettingError, ClientsFileError, MetaApiError, WindowError, WarehouseError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _owner_only_files():
            return args.func(args)
    except KeyboardInterrupt:  # outside a run (e.g. while loading): nothing to clean up
        print("Stopped (SIGINT).", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        from metrics_pipeline.runner import WindowError

        if isinstance(exc, _expected_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, WindowError) else 1
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        if not args.verbose:
            print("(run again with --verbose for the full trace)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
