"""The ``loanops`` command: dev (everything at once), worker, api, migrate, seed, demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from loanops.settings import VAR_DIR, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    from loanops.db import make_engine
    from loanops.migrate import upgrade
    from loanops.policy import seed_lpr

    settings = get_settings()
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    added = seed_lpr(engine)
    engine.dispose()
    console.print(f"database migrated: {_safe_url(settings.database_url)}")
    if added:
        console.print(f"LPR announcements seeded from the packaged table: {added}")


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


@app.command()
def seed(
    demo: Annotated[bool, typer.Option("--demo", help="create the demo users")] = False,
) -> None:
    """Seed the database. Demo users are only created in development."""
    from loanops.db import make_engine
    from loanops.seed import seed_demo_users

    settings = get_settings()
    if not demo:
        console.print("nothing to seed; pass --demo for the demo users")
        return
    if settings.environment != "development":
        console.print("[red]demo users are only seeded when LOANOPS_ENVIRONMENT=development[/red]")
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    created = seed_demo_users(engine, password=settings.demo_password)
    engine.dispose()
    console.print(f"demo users created: {', '.join(created) or 'none (all exist)'}")


@app.command()
def worker() -> None:
    """Run the Temporal worker (the loan workflow and its activities)."""
    import worker as worker_module

    worker_module.main()


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run the HTTP API (uvicorn serving api.app:app)."""
    import uvicorn

    uvicorn.run("api.app:app", host=host, port=port, log_level="info")


@app.command()
def dev(
    api_port: Annotated[int, typer.Option(help="API port")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    var_dir: Annotated[Path, typer.Option(help="where the SQLite files live")] = VAR_DIR,
) -> None:
    """Migrate, seed the demo users, and run the Temporal dev server, the worker and the API
    together on embedded defaults. Ctrl-C stops everything."""
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
    env["LOANOPS_TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
    env.setdefault("LOANOPS_PUBLIC_BASE_URL", f"http://127.0.0.1:{api_port}")
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()

    upgrade(settings.database_url)
    if settings.environment == "development":
        from loanops.db import make_engine
        from loanops.seed import seed_demo_users

        engine = make_engine(settings.database_url)
        seed_demo_users(engine, password=settings.demo_password)
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
            ),
            ready=lambda p: wait_for_port("127.0.0.1", temporal_port, timeout=60, process=p),
        )
        sup.start("worker", [python, "-m", "loanops", "worker"], env=env)
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
  Temporal UI    http://127.0.0.1:{ui_port}
  Temporal       127.0.0.1:{temporal_port}  (namespace {settings.temporal_namespace})
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
) -> None:
    """Drive one loan from application to SETTLED through the HTTP API, as the demo users."""
    import httpx

    from loanops.demo import DemoFailed, run_demo

    secret = password or get_settings().demo_password
    with httpx.Client(base_url=api_url, timeout=60) as client:
        try:
            run_demo(client, password=secret, say=console.print)
        except (DemoFailed, httpx.HTTPError) as exc:
            console.print(f"[red]demo failed:[/red] {exc}")
            raise typer.Exit(1) from None


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
