"""The ``loanops`` command: dev (everything at once), worker, api, migrate, seed, demo."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from loanops.settings import VAR_DIR, get_settings

if TYPE_CHECKING:
    from datetime import date

    from domain.policy import LoanPolicy

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic) and seed the policy tables."""
    from loanops.migrate import upgrade

    settings = get_settings()
    added = upgrade(settings.database_url)  # seeds the LPR table and loan policy version 1
    console.print(f"database migrated: {_safe_url(settings.database_url)}")
    if added:
        console.print(f"policy rows seeded (LPR announcements, loan policy version 1): {added}")


lpr_app = typer.Typer(help="The dated LPR table the interest ceiling is computed from.")
app.add_typer(lpr_app, name="lpr")


@lpr_app.command("list")
def lpr_list() -> None:
    """Show the LPR announcements on record."""
    from loanops.db import make_engine
    from loanops.policy import lpr_table

    engine = make_engine(get_settings().database_url)
    for r in lpr_table(engine).rates:
        five = f"{r.five_year:.4f}" if r.five_year is not None else "-"
        typer.echo(f"{r.effective_date}  1Y {r.one_year:.4f}  5Y {five}  {r.source}")
    engine.dispose()


@lpr_app.command("add")
def lpr_add(
    effective_date: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    one_year: Annotated[str, typer.Option(help="fraction, e.g. 0.0300")],
    source: Annotated[str, typer.Option(help="the announcement it comes from")],
    five_year: Annotated[str | None, typer.Option(help="fraction, e.g. 0.0350")] = None,
) -> None:
    """Record a newly published LPR; offers made from its effective date are capped by it."""
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from loanops.db import make_engine
    from loanops.policy import add_lpr

    try:
        day = date.fromisoformat(effective_date)
        one = Decimal(one_year)
        five = Decimal(five_year) if five_year else None
    except (ValueError, InvalidOperation) as exc:
        console.print(f"[red]invalid value:[/red] {exc}")
        raise typer.Exit(2) from None
    engine = make_engine(get_settings().database_url)
    try:
        add_lpr(engine, effective_date=day, one_year=one, five_year=five, source=source)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    console.print(f"LPR {one} recorded from {day}")


blacklist_app = typer.Typer(help="Identity numbers the department does not lend to.")
app.add_typer(blacklist_app, name="blacklist")


@blacklist_app.command("list")
def blacklist_list() -> None:
    """The entries (identity numbers masked), oldest first."""
    from domain.masking import mask_id_number
    from loanops.blacklist import blacklist
    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        entries = blacklist(engine)
    finally:
        engine.dispose()
    table = Table("id number", "reason", "by", "since")
    for e in entries:
        table.add_row(mask_id_number(e.id_number), e.reason, e.recorded_by, str(e.recorded_at))
    console.print(table)


@blacklist_app.command("add")
def blacklist_add(
    id_number: Annotated[str, typer.Argument(help="the resident identity number")],
    reason: Annotated[str, typer.Option(help="why (kept with the entry and audited)")],
    by: Annotated[str | None, typer.Option(help="who adds it (default: your login name)")] = None,
) -> None:
    """Add an identity number: its applications fail the blacklist check (a knock-out)."""
    import getpass

    from loanops.blacklist import add_to_blacklist
    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        add_to_blacklist(engine, id_number=id_number, reason=reason, by=by or getpass.getuser())
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    console.print("added to the blacklist")


@blacklist_app.command("remove")
def blacklist_remove(
    id_number: Annotated[str, typer.Argument(help="the resident identity number")],
    by: Annotated[
        str | None, typer.Option(help="who removes it (default: your login name)")
    ] = None,
) -> None:
    """Remove an identity number from the blacklist."""
    import getpass

    from loanops.blacklist import remove_from_blacklist
    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        remove_from_blacklist(engine, id_number=id_number, by=by or getpass.getuser())
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    console.print("removed from the blacklist")


policy_app = typer.Typer(
    help="The versioned loan policy (penalty, ceiling, SLAs, deadlines, servicing): a loan keeps "
    "the version in force when it started."
)
app.add_typer(policy_app, name="policy")


@policy_app.command("list")
def policy_list() -> None:
    """Show every version: its effective date, source, and what it changed."""
    from rich.table import Table
    from rich.text import Text

    from loanops.db import make_engine
    from loanops.policy import EMPTY_POLICY_TABLE, loan_policies

    engine = make_engine(get_settings().database_url)
    try:
        versions = loan_policies(engine)
    finally:
        engine.dispose()
    if not versions:
        _fail(EMPTY_POLICY_TABLE)
    table = Table("version", "effective from", "source", "changes")
    for previous, policy in zip([None, *versions], versions, strict=False):
        changes = "\n".join(_rule_changes(previous, policy)) if previous else "(first version)"
        table.add_row(
            str(policy.version), str(policy.effective_from), Text(policy.source), Text(changes)
        )
    Console().print(table)


@policy_app.command("show")
def policy_show(
    version: Annotated[int | None, typer.Argument(help="the newest version if omitted")] = None,
) -> None:
    """Print a version's rules as JSON (a file `policy add --file` accepts, once edited)."""
    from loanops.policy import EMPTY_POLICY_TABLE, loan_policies, loan_policy_version

    _show_version("loan policy", loan_policies, loan_policy_version, EMPTY_POLICY_TABLE, version)


@policy_app.command("add")
def policy_add(
    file: Annotated[Path, typer.Option("--file", help="JSON object of the rules that change")],
    effective_from: Annotated[str, typer.Option(help="YYYY-MM-DD; not before the newest's")],
    source: Annotated[str, typer.Option(help="the decision or regulation it comes from")],
    by: Annotated[str | None, typer.Option("--by", help="who records it [default: you]")] = None,
) -> None:
    """Record a new version: the newest version's rules with the file's laid over them. Loans
    started from its effective date take it; loans already started keep theirs."""
    from loanops.db import make_engine
    from loanops.policy import add_loan_policy

    day, rules, by = _versioned_change(file, effective_from, by, '{"penalty_multiple": "1.3"}')
    engine = make_engine(get_settings().database_url)
    try:
        policy = add_loan_policy(
            engine, rules=rules, effective_from=day, source=source, recorded_by=by
        )
    except (ValueError, LookupError) as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    console.print(
        f"loan policy version {policy.version} recorded, in force from {policy.effective_from}",
        soft_wrap=True,
    )


def _versioned_change(
    file: Path, effective_from: str, by: str | None, example: str
) -> tuple[date, dict[str, Any], str]:
    """The effective date, the rules of a JSON file and who records them (policy, scorecard);
    exits naming the option that is wrong."""
    import getpass
    import json
    from decimal import Decimal

    try:
        day = date.fromisoformat(effective_from)
    except ValueError:
        _fail(f"effective_from: {effective_from!r} is not a date YYYY-MM-DD")
    try:
        rules = json.loads(file.read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        _fail(f"file: cannot read {file}: {exc.strerror or exc}")
    except ValueError as exc:  # JSONDecodeError, or text that is not UTF-8
        _fail(f"file: {file} is not valid JSON: {exc}")
    if not isinstance(rules, dict):
        _fail(f"file: {file} must hold a JSON object of rules, e.g. {example}")
    if by is None:
        try:
            by = getpass.getuser()
        except (OSError, KeyError):
            _fail("by: cannot tell who you are; pass --by USER")
    return day, rules, by


scorecard_app = typer.Typer(
    help="The versioned assessment rules: the scorecard and the intake checks' thresholds it "
    "carries (ages, caps, required documents, prohibited purposes). An assessment uses the "
    "version in force on its day and records it."
)
app.add_typer(scorecard_app, name="scorecard")


@scorecard_app.command("list")
def scorecard_list() -> None:
    """Show every version: its effective date and source."""
    from rich.table import Table
    from rich.text import Text

    from loanops.db import make_engine
    from loanops.scorecards import EMPTY_SCORECARD_TABLE, scorecards

    engine = make_engine(get_settings().database_url)
    try:
        versions = scorecards(engine)
    finally:
        engine.dispose()
    if not versions:
        _fail(EMPTY_SCORECARD_TABLE)
    table = Table("version", "effective from", "source")
    for card in versions:
        table.add_row(str(card.version), str(card.effective_from), Text(card.source))
    Console().print(table)


@scorecard_app.command("show")
def scorecard_show(
    version: Annotated[int | None, typer.Argument(help="the newest version if omitted")] = None,
) -> None:
    """Print a version's rules as JSON (a file `scorecard add --file` accepts, once edited)."""
    from loanops.scorecards import EMPTY_SCORECARD_TABLE, scorecard_version, scorecards

    _show_version("scorecard", scorecards, scorecard_version, EMPTY_SCORECARD_TABLE, version)


def _show_version(
    what: str,
    every: Callable[[Any], Sequence[Any]],
    one: Callable[[Any, int], Any],
    empty: str,
    version: int | None,
) -> None:
    """Print one version of versioned rules (the newest without a number) as JSON."""
    import json

    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        if version is None:
            versions = every(engine)
            if not versions:
                _fail(empty)
            rules = versions[-1]
        else:
            rules = one(engine, version)
    except LookupError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    console.print(
        f"{what} version {rules.version}, effective from {rules.effective_from}", soft_wrap=True
    )
    typer.echo(json.dumps(rules.rules(), indent=2, ensure_ascii=False))


@scorecard_app.command("add")
def scorecard_add(
    file: Annotated[Path, typer.Option("--file", help="JSON object of the rules that change")],
    effective_from: Annotated[str, typer.Option(help="YYYY-MM-DD; not before the newest's")],
    source: Annotated[str, typer.Option(help="the decision (model validation, committee...)")],
    by: Annotated[str | None, typer.Option("--by", help="who records it [default: you]")] = None,
) -> None:
    """Record a new version: the newest version's rules with the file's laid over them
    (``intake`` rule by rule). Assessments from its effective date use it."""
    from loanops.db import make_engine
    from loanops.scorecards import add_scorecard

    day, rules, by = _versioned_change(file, effective_from, by, '{"max_dti": "0.65"}')
    engine = make_engine(get_settings().database_url)
    try:
        card = add_scorecard(engine, rules=rules, effective_from=day, source=source, recorded_by=by)
    except (ValueError, LookupError) as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    console.print(
        f"scorecard version {card.version} recorded, in force from {card.effective_from}",
        soft_wrap=True,
    )


def _rule_changes(old: LoanPolicy, new: LoanPolicy) -> list[str]:
    """What ``new`` changes from ``old``, one rule a line (``sla_hours`` per task kind)."""
    before, after = old.rules(), new.rules()
    lines = []
    for name, value in after.items():
        was = before.get(name)
        if isinstance(value, dict) and isinstance(was, dict):
            lines += [
                f"{name}.{k}: {was.get(k)} → {value.get(k)}"
                for k in sorted(set(was) | set(value))
                if was.get(k) != value.get(k)
            ]
        elif value != was:
            lines.append(f"{name}: {was} → {value}")
    return lines or ["(no change)"]


def _fail(message: str) -> NoReturn:
    """A refused command: one line on stderr, exit status 2."""
    from rich.markup import escape

    console.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="create the demo users")] = False,
) -> None:
    """Seed the database. Demo users are only created in development."""
    from loanops.db import make_engine
    from loanops.seed import seed_demo_pool, seed_demo_users

    settings = get_settings()
    if not demo:
        console.print("nothing to seed; pass --demo for the demo users and funding pool")
        return
    if settings.environment != "development":
        console.print("[red]demo users are only seeded when LOANOPS_ENVIRONMENT=development[/red]")
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    created = seed_demo_users(engine, password=settings.demo_password)
    opened = seed_demo_pool(engine, account_no=settings.bank_pool_account)
    engine.dispose()
    console.print(f"demo users created: {', '.join(created) or 'none (all exist)'}")
    console.print(f"demo funding pool: {'opened' if opened else 'exists'}")


@app.command()
def worker(
    queue: Annotated[
        str,
        typer.Option(
            help="loans: the workflows and their activities; render: the document renders "
            "(contract, signing record, risk report, settlement certificate) on the render "
            "queue; all: both in this one process"
        ),
    ] = "all",
) -> None:
    """Run the Temporal worker (the loan workflows and their activities, and/or the render
    worker)."""
    import worker as worker_module

    if queue not in worker_module.QUEUES:
        raise typer.BadParameter(f"--queue must be one of {', '.join(worker_module.QUEUES)}")
    worker_module.main(queue)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="API processes (uvicorn workers) sharing the port")
    ] = 1,
) -> None:
    """Run the HTTP API (uvicorn serving api.app:app). The API is stateless (the records are in
    the database, the process in Temporal, logins in signed tokens and database rows), so any
    number of processes may serve it side by side: ``--workers N`` runs N on this port."""
    import uvicorn

    uvicorn.run("api.app:app", host=host, port=port, log_level="info", workers=workers)


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="API port")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    bureau_port: Annotated[int, typer.Option(help="sandbox credit bureau port")] = 8091,
    sms_port: Annotated[int, typer.Option(help="sandbox SMS gateway port")] = 8092,
    bank_port: Annotated[int, typer.Option(help="sandbox bank port")] = 8093,
    var_dir: Annotated[Path, typer.Option(help="where the SQLite files live")] = VAR_DIR,
) -> None:
    """Migrate, seed the demo users, and run the Temporal dev server, the sandbox credit bureau,
    the sandbox SMS gateway, the worker, the render worker and the API together on embedded defaults. Ctrl-C stops
    everything."""
    from loanops.migrate import upgrade
    from loanops.processes import (
        Supervisor,
        find_temporal_binary,
        temporal_dev_server_command,
        wait_for_http,
        wait_for_port,
    )

    var_dir = var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("LOANOPS_ENVIRONMENT", "development")
    env.setdefault("LOANOPS_DATABASE_URL", f"sqlite:///{var_dir / 'loanops.db'}")
    # The install's own keys (generated on first run unless configured): every child reads them.
    env.setdefault("LOANOPS_KEY_DIR", str(var_dir / "keys"))
    env["LOANOPS_TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
    env.setdefault("LOANOPS_PUBLIC_BASE_URL", f"http://127.0.0.1:{api_port}")
    env["LOANOPS_BUREAU_URL"] = f"http://127.0.0.1:{bureau_port}"
    env["LOANOPS_SMS_URL"] = f"http://127.0.0.1:{sms_port}"
    env["LOANOPS_BANK_URL"] = f"http://127.0.0.1:{bank_port}"
    # The Web UI decodes payloads through the API's codec, which lets in the UI's origin only.
    env["LOANOPS_TEMPORAL_UI_ORIGIN"] = f"http://127.0.0.1:{ui_port}"
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()

    upgrade(settings.database_url)
    # The Temporal payload keyring: checked (or, in development, generated under var/) once
    # here, before the worker and the API both read it.
    from loanops.temporal import payload_codec

    payload_codec(settings)
    if settings.environment == "development":
        from loanops.db import make_engine
        from loanops.seed import seed_demo_pool, seed_demo_users

        engine = make_engine(settings.database_url)
        seed_demo_users(engine, password=settings.demo_password)
        seed_demo_pool(engine, account_no=settings.bank_pool_account)
        engine.dispose()

    python = sys.executable
    with Supervisor() as sup:
        sup.start(
            "temporal",
            temporal_dev_server_command(
                binary=find_temporal_binary(),
                db_file=var_dir / "temporal.db",
                port=temporal_port,
                ui_port=ui_port,
                search_attributes={"LoanStage": "Keyword"},
                ui_codec_endpoint=f"http://127.0.0.1:{api_port}/api/v1/codec",
            ),
            ready=lambda p: wait_for_port("127.0.0.1", temporal_port, timeout=60, process=p),
        )
        sup.start(
            "bureau",
            [python, "-m", "sandbox.bureau", "--port", str(bureau_port)],
            env=env,
            ready=lambda p: wait_for_http(
                f"http://127.0.0.1:{bureau_port}/healthz", timeout=60, process=p
            ),
        )
        # The gateway signs its receipts with LOANOPS_SMS_CALLBACK_SECRET from this env.
        env.setdefault("LOANOPS_SMS_CALLBACK_SECRET", settings.sms_callback_secret)
        sup.start(
            "sms",
            [python, "-m", "sandbox.sms", "--port", str(sms_port)],
            env=env,
            ready=lambda p: wait_for_http(
                f"http://127.0.0.1:{sms_port}/healthz", timeout=60, process=p
            ),
        )
        sup.start(
            "bank",
            [
                python,
                "-m",
                "sandbox.bank",
                "--port",
                str(bank_port),
                "--ledger",
                str(var_dir / "bank.db"),
                "--callback-secret",
                settings.bank_callback_secret,
            ],
            env=env,
            ready=lambda p: wait_for_http(
                f"http://127.0.0.1:{bank_port}/healthz", timeout=60, process=p
            ),
        )
        sup.start("worker", [python, "-m", "loanops", "worker", "--queue", "loans"], env=env)
        # Documents are rendered in a process of their own (issue 13).
        sup.start("render", [python, "-m", "loanops", "worker", "--queue", "render"], env=env)
        sup.start(
            "api",
            [python, "-m", "loanops", "api", "--port", str(api_port)],
            env=env,
            ready=lambda p: wait_for_http(
                f"http://127.0.0.1:{api_port}/healthz", timeout=60, process=p
            ),
        )
        console.print(
            f"""
[bold green]LoanOps is running[/bold green]
  API            http://127.0.0.1:{api_port}/api/v1   (OpenAPI: http://127.0.0.1:{api_port}/docs)
  Temporal UI    http://127.0.0.1:{ui_port}   (payloads encrypted; decoded by http://127.0.0.1:{api_port}/api/v1/codec with a staff token)
  Temporal       127.0.0.1:{temporal_port}  (namespace {settings.temporal_namespace})
  Credit bureau  {settings.bureau_url}   (sandbox)
  SMS gateway    {settings.sms_url}   (sandbox; a handset: {settings.sms_url}/v1/messages?to=13800138000)
  Bank           {settings.bank_url}   (sandbox, ledger {var_dir / "bank.db"})
  Database       {_safe_url(settings.database_url)}
  Demo logins    officer, ops, ops2, risk, product, cs, manager, auditor
                 password: {settings.demo_password if settings.environment == "development" else "(not seeded)"}
  Try            loanops demo --api http://127.0.0.1:{api_port}
Ctrl-C stops everything."""
        )
        code = sup.run_until_stopped()
    raise typer.Exit(code)


@app.command()
def demo(
    api_url: Annotated[
        str, typer.Option("--api", help="the running API")
    ] = "http://127.0.0.1:8000",
    password: Annotated[str | None, typer.Option(help="demo password")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="the API's database, whose outbox says which SMS the borrower was sent "
            "(default: LOANOPS_DATABASE_URL)",
        ),
    ] = None,
    sms_url: Annotated[
        str | None,
        typer.Option(
            "--sms-url",
            help="the SMS gateway whose handset the borrower reads (default: LOANOPS_SMS_URL)",
        ),
    ] = None,
    bank_url: Annotated[
        str | None,
        typer.Option(
            "--bank-url",
            help="the bank the borrower's repayments are transferred through, into the "
            "funding pool's account (default: LOANOPS_BANK_URL)",
        ),
    ] = None,
) -> None:
    """Drive one loan from application to SETTLED through the HTTP API, as the demo users."""
    import functools

    import httpx

    from loanops.db import make_engine
    from loanops.demo import DemoFailed, read_sms_from_handset, run_demo

    if database_url and "LOANOPS_KEY_DIR" not in os.environ:
        # The borrower's phone is encrypted in that database (loanops.pii) with the keys of the
        # install it belongs to: a `loanops dev --var-dir DIR` install keeps them in DIR/keys,
        # beside its loanops.db.
        from sqlalchemy.engine import make_url

        parsed = make_url(database_url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            keys = Path(parsed.database).resolve().parent / "keys"
            if keys.is_dir():
                os.environ["LOANOPS_KEY_DIR"] = str(keys)
                get_settings.cache_clear()
    settings = get_settings()
    secret = password or settings.demo_password
    engine = make_engine(database_url or settings.database_url)
    with httpx.Client(base_url=api_url, timeout=60) as client:
        try:
            run_demo(
                client,
                password=secret,
                say=console.print,
                read_sms=functools.partial(
                    read_sms_from_handset, engine, sms_url or settings.sms_url
                ),
                bank_url=bank_url or settings.bank_url,
                pool_account=settings.bank_pool_account,
            )
        except (DemoFailed, httpx.HTTPError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """The console script: settings errors are reported in one line, not as a traceback."""
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            console.print(f"[red]configuration error[/red] ({field}): {err['msg']}")
        raise SystemExit(2) from None


__all__ = ["app", "main"]


product_app = typer.Typer(
    help="The product catalog (read-only here; the product manager adds products and versions "
    "through the API): each product's versions, the one in force today."
)
app.add_typer(product_app, name="product")


def _business_today() -> date:
    from datetime import UTC, datetime

    from domain.calendar import business_date

    return business_date(datetime.now(UTC), get_settings().business_timezone)


@product_app.command("list")
def product_list() -> None:
    """Every product: the version in force today, its amounts, terms, grades and fees."""
    from rich.text import Text

    from loanops.db import make_engine
    from loanops.products import catalog

    engine = make_engine(get_settings().database_url)
    try:
        entries = catalog(engine, _business_today())
    finally:
        engine.dispose()
    if not entries:
        _fail("the product catalog is empty: run `loanops migrate` to seed it")
    table = Table("code", "in force", "newest", "name", "amounts", "terms", "rates by grade")
    for e in entries:
        shown = e.in_force or e.latest
        d = shown.definition
        table.add_row(
            e.code,
            f"v{e.in_force.version} from {e.in_force.effective_from}" if e.in_force else "-",
            f"v{e.latest.version} from {e.latest.effective_from}",
            Text(d.name),
            f"{d.min_amount}-{d.max_amount}",
            ", ".join(str(t) for t in d.terms),
            " ".join(f"{g}:{r.low}-{r.high}" for g, r in sorted(d.rates.items())),
        )
    Console().print(table)


@product_app.command("show")
def product_show(
    code: Annotated[str, typer.Argument(help="the product's code, e.g. SMB_OPERATING")],
    version: Annotated[
        int | None, typer.Option(help="the version in force today if omitted")
    ] = None,
) -> None:
    """Print a version's definition as JSON (the body `POST /api/v1/products/{code}/versions`
    accepts, once edited)."""
    import json

    from domain.products import version_in_force
    from loanops.db import make_engine
    from loanops.products import product_versions

    engine = make_engine(get_settings().database_url)
    try:
        versions = product_versions(engine, code)
    except LookupError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    if version is None:
        chosen = version_in_force(versions, _business_today()) or versions[-1]
    else:
        found = [v for v in versions if v.version == version]
        if not found:
            _fail(f"version: product {code} has no version {version}")
        chosen = found[0]
    console.print(
        f"product {code} version {chosen.version}, effective from {chosen.effective_from}",
        soft_wrap=True,
    )
    typer.echo(json.dumps(chosen.definition.to_json(), indent=2, ensure_ascii=False))


audit_app = typer.Typer(help="The tamper-evident audit trail.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit trail's hash chain: "n entries, chain intact (head …)", or the first
    altered, missing or reordered entry (exit code 1)."""
    from loanops.audit import verify_chain
    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        report = verify_chain(engine)
    finally:
        engine.dispose()
    if not report.intact:
        console.print(f"[red]audit trail broken:[/red] {report}", soft_wrap=True)
        raise typer.Exit(1)
    typer.echo(str(report))


@app.command()
def backup(
    out: Annotated[Path, typer.Option(help="the backup file to write (FILE.sha256 beside it)")],
) -> None:
    """Back the database up to one file with a sha256 checksum file: SQLite through its online
    backup API, PostgreSQL with pg_dump -Fc."""
    from loanops.backup import BackupError
    from loanops.backup import backup as run_backup

    settings = get_settings()
    try:
        info = run_backup(settings.database_url, out)
    except BackupError as exc:
        _fail(str(exc))
    console.print(
        f"{info.kind} backup of {_safe_url(settings.database_url)} written to {info.path} "
        f"({info.size} bytes, sha256 {info.sha256} in {info.checksum_path.name})",
        soft_wrap=True,
    )


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="a file written by `loanops backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="replace a database that is not empty")
    ] = False,
) -> None:
    """Restore a backup after checking its sha256 checksum file (a corrupted backup is refused).
    A database that holds anything is replaced only with --force."""
    from loanops.backup import BackupError
    from loanops.backup import restore as run_restore

    settings = get_settings()
    try:
        kind = run_restore(settings.database_url, file, force=force)
    except BackupError as exc:
        _fail(str(exc))
    console.print(
        f"{kind} backup {file} restored into {_safe_url(settings.database_url)}", soft_wrap=True
    )


schedules_app = typer.Typer(
    help="The department's Temporal Schedules (classification, portfolio snapshot, "
    "reconciliation, liquidity check); the worker creates or updates them when it starts."
)
app.add_typer(schedules_app, name="schedules")


def _with_temporal(job: Callable[[Any], Any]) -> Any:
    import asyncio

    from loanops.temporal import connect

    async def go() -> Any:
        return await job(await connect(get_settings()))

    from temporalio.service import RPCError

    try:
        return asyncio.run(go())
    except RPCError as exc:
        _fail(f"Temporal refused: {exc.message}")
    except RuntimeError as exc:  # the SDK's "Failed client connect"
        _fail(f"Temporal at {get_settings().temporal_address}: {exc}")


@schedules_app.command("list")
def schedules_list() -> None:
    """Each schedule: its workflow, when it runs, whether it is paused, its next and last runs."""
    from loanops.schedules import schedule_statuses

    rows = _with_temporal(lambda client: schedule_statuses(client, get_settings()))
    table = Table("id", "workflow", "when", "state", "next", "recent")
    for r in rows:
        state = "not created" if not r.exists else ("paused" if r.paused else "active")
        table.add_row(r.id, r.workflow, r.when, state, "\n".join(r.next_runs), "\n".join(r.recent))
    Console().print(table)


@schedules_app.command("ensure")
def schedules_ensure() -> None:
    """Create or update every schedule now (what the worker does when it starts)."""
    from loanops.schedules import ensure_schedules

    done = _with_temporal(lambda client: ensure_schedules(client, get_settings()))
    for sid, what in done.items():
        console.print(f"{sid}: {what}")


@schedules_app.command("trigger")
def schedules_trigger(
    schedule_id: Annotated[str, typer.Argument(help="e.g. daily-reconciliation")],
) -> None:
    """Run a schedule's job now (e.g. today's reconciliation)."""
    from loanops.schedules import trigger_schedule

    async def job(client: Any) -> None:
        await trigger_schedule(client, get_settings(), schedule_id)

    try:
        _with_temporal(job)
    except LookupError as exc:
        _fail(str(exc))
    console.print(f"{schedule_id}: triggered")


user_app = typer.Typer(
    help="Staff accounts: add the first department manager here, then manage the others here or "
    "through the API (/api/v1/users). Every change is audited."
)
app.add_typer(user_app, name="user")


def _user_change(fn: Callable[..., Any], **kw: Any) -> Any:
    """Run one ``loanops.users`` change against the configured database; a refusal is one line
    naming the field or the reason, exit status 2."""
    from datetime import UTC, datetime

    from sqlmodel import Session

    from loanops import users as accounts
    from loanops.db import make_engine

    engine = make_engine(get_settings().database_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            return fn(session, at=datetime.now(UTC), **kw)
    except accounts.UserInputError as exc:
        _fail(f"{exc.field}: {exc.reason}")
    except (accounts.UserConflict, accounts.UnknownUser) as exc:
        _fail(str(exc))
    finally:
        engine.dispose()


def _actor(by: str | None) -> str:
    import getpass

    return by or f"cli:{getpass.getuser()}"


_PASSWORD = typer.Option(
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="asked for when not given (better: not on the command line, where `ps` shows it)",
)
_BY = typer.Option(help="who makes the change (default: cli:<your login name>)")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="the login name")],
    roles: Annotated[str, typer.Option(help="comma-separated roles, e.g. department_manager")],
    password: Annotated[str, _PASSWORD],
    full_name: Annotated[str | None, typer.Option(help="default: the username")] = None,
    by: Annotated[str | None, _BY] = None,
) -> None:
    """Add an account (production starts with one: --roles department_manager)."""
    from loanops.users import create_user

    u = _user_change(
        create_user,
        username=username,
        full_name=full_name or username,
        roles=[r.strip() for r in roles.split(",") if r.strip()],
        password=password,
        actor=_actor(by),
    )
    console.print(f"user {u.username} added: {', '.join(u.roles)}")


@user_app.command("disable")
def user_disable(
    username: Annotated[str, typer.Argument()], by: Annotated[str | None, _BY] = None
) -> None:
    """Disable an account: it loses access at once, its tokens included."""
    from loanops.users import set_active

    _user_change(set_active, username=username, active=False, actor=_actor(by))
    console.print(f"user {username} disabled")


@user_app.command("enable")
def user_enable(
    username: Annotated[str, typer.Argument()], by: Annotated[str | None, _BY] = None
) -> None:
    """Enable a disabled account again (and clear a login lock on it)."""
    from loanops.users import set_active

    _user_change(set_active, username=username, active=True, actor=_actor(by))
    console.print(f"user {username} enabled")


@user_app.command("roles")
def user_roles(
    username: Annotated[str, typer.Argument()],
    roles: Annotated[str, typer.Argument(help="comma-separated: the account's roles from now on")],
    by: Annotated[str | None, _BY] = None,
) -> None:
    """Set an account's roles."""
    from loanops.users import set_roles

    u = _user_change(
        set_roles,
        username=username,
        roles=[r.strip() for r in roles.split(",") if r.strip()],
        actor=_actor(by),
    )
    console.print(f"user {u.username}: {', '.join(u.roles)}")


@user_app.command("reset-password")
def user_reset_password(
    username: Annotated[str, typer.Argument()],
    password: Annotated[str, _PASSWORD],
    by: Annotated[str | None, _BY] = None,
) -> None:
    """Give an account a new password; its current logins end."""
    from loanops.users import reset_password

    _user_change(reset_password, username=username, password=password, actor=_actor(by))
    console.print(f"password of {username} reset; their logins ended")


@user_app.command("list")
def user_list() -> None:
    """Every account, its roles and whether it is active."""
    from sqlmodel import Session

    from loanops.db import make_engine
    from loanops.users import list_users

    engine = make_engine(get_settings().database_url)
    try:
        with Session(engine) as session:
            rows = list_users(session)
    finally:
        engine.dispose()
    for u in rows:
        state = "active" if u.is_active else "disabled"
        typer.echo(f"{u.username}\t{','.join(sorted(u.roles))}\t{state}\t{u.full_name}")


@app.command()
def permissions() -> None:
    """Print the permission matrix (domain/permissions.py) as a Markdown table: each action and
    the principals that may do it. The object rules come on top (a business officer: own
    applications only)."""
    from domain.lifecycle import Role
    from domain.permissions import MATRIX, NOT_STAFF

    staff = [r.value for r in Role]
    others = sorted(NOT_STAFF)
    columns = [*staff, *others]
    typer.echo("| action | " + " | ".join(columns) + " |")
    typer.echo("|---|" + "---|" * len(columns))
    for action, allowed in MATRIX.items():
        marks = ["✓" if c in allowed else "" for c in columns]
        typer.echo(f"| `{action.value}` | " + " | ".join(marks) + " |")


keys_app = typer.Typer(help="The keys of borrowers' personal data at rest (loanops.pii).")
app.add_typer(keys_app, name="keys")


@keys_app.command("rotate")
def keys_rotate(
    reindex: Annotated[
        bool, typer.Option("--reindex", help="also recompute every blind index")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, help="rows per committed batch")] = 200,
) -> None:
    """Re-encrypt every personal-data value not yet under the current key (LOANOPS_PII_KEY_ID),
    committing batch by batch: idempotent (a second run changes nothing) and resumable (an
    interrupted run keeps what it did). The old key can leave the ring once it has finished."""
    from loanops.db import make_engine
    from loanops.pii import pii_keyring, reencrypt_rows, reindex_rows

    keyring = pii_keyring()
    engine = make_engine(get_settings().database_url)
    try:
        with engine.connect() as conn:
            changed = reencrypt_rows(conn, keyring, batch=batch)
            indexed = reindex_rows(conn, keyring) if reindex else None
            conn.commit()
    finally:
        engine.dispose()
    for table, count in changed.items():
        typer.echo(f"{table}\t{count} rows re-encrypted")
    typer.echo(f"total\t{sum(changed.values())} rows now under key {keyring.current_key_id}")
    if indexed is not None:
        typer.echo(f"blind index\t{indexed} rows reindexed")


retention_app = typer.Typer(help="Retention of borrowers' personal data (loanops.retention).")
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be destroyed, change nothing")
    ] = False,
    today: Annotated[
        str | None, typer.Option(help="the business date to apply (default: today)")
    ] = None,
    by: Annotated[str, typer.Option(help="who runs it (the audit actor)")] = "system",
) -> None:
    """Destroy the personal data of borrowers past retention (LoanPolicy.pii_retention_years
    after their last loan settled), replacing it by tombstones; financial records and the audit
    trail kept. Prints each borrower destroyed (or, --dry-run, that would be) and the totals."""
    from loanops.db import make_engine
    from loanops.retention import run_retention

    try:
        on = date.fromisoformat(today) if today else _business_today()
    except ValueError:
        _fail(f"--today: {today!r} is not a date YYYY-MM-DD")
    engine = make_engine(get_settings().database_url)
    try:
        report = run_retention(engine, today=on, dry_run=dry_run, by=by)
    except LookupError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    verb = "would destroy" if dry_run else "destroyed"
    for d in report.destroyed:
        typer.echo(
            f"{verb}\tborrower {d.borrower_id}\t{','.join(d.application_nos)}\t"
            f"ended {d.ended_on}\t{d.rows} rows"
        )
    typer.echo(
        f"retention {report.retention_years} years on {report.today}: {verb} "
        f"{len(report.destroyed)} borrowers ({report.rows} rows)"
        + (" — dry run, nothing changed" if dry_run else "")
    )


@app.command()
def simulate(
    loans: Annotated[int, typer.Option(min=1, help="how many loans")] = 200,
    months: Annotated[int, typer.Option(min=1, help="how many months of servicing")] = 12,
    seed: Annotated[int, typer.Option(help="the borrowers' random seed")] = 1,
    keep: Annotated[
        Path | None,
        typer.Option(help="keep the database, documents and sandbox logs in this directory"),
    ] = None,
) -> None:
    """Run a portfolio on the time-skipping Temporal test server with the real worker, a fresh
    SQLite database and the sandbox services: borrowers on time, early, late, defaulting and
    disputing, the staff deciding the ladder's tasks; then print the portfolio report and check
    that every fen disbursed is repaid, outstanding or written off (loanops/simulate.py)."""
    import asyncio

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from loanops.simulate import print_result, run_simulation

    with Progress(
        TextColumn("[bold]simulating[/] day"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("days", total=None, counts="")

        def progress(done: int, total: int, counts: dict[str, int]) -> None:
            text = " ".join(f"{k} {v}" for k, v in counts.items())
            bar.update(task, completed=done, total=total, counts=text)

        result = asyncio.run(run_simulation(loans, months, seed, workdir=keep, progress=progress))
    print_result(result, Console())
    if result.check.difference != 0:
        raise typer.Exit(1)
