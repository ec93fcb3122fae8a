"""Run argilla-server's parts with normloom's SQL search engine registered first.

Runs inside the argilla-server virtualenv (``python launch.py COMMAND``), never in
normloom's: it imports only what that virtualenv has. The server's own typer CLI
crashes there (typer 0.9 with a newer click), so this does what it would: migrate the
database with alembic, create the owner, run uvicorn or an rq worker. Every setting
comes from the ARGILLA_* environment the caller sets; the owner's password and API key
come to `setup` on standard input as JSON, so they never show in a process list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sql_engine  # noqa: E402  (registers the engine before the app is imported)


def migrate() -> None:
    """Bring the database to the newest schema and switch SQLite to WAL."""
    import alembic.config
    from argilla_server.database import ALEMBIC_CONFIG_FILE, database_url_sync
    from argilla_server.settings import settings

    alembic.config.main(argv=["-q", "-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])
    if settings.database_is_sqlite:
        # WAL lets the search engine read while a request writes.
        path = database_url_sync().split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


async def _create_owner(username: str, password: str, api_key: str, workspace: str):
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    async with AsyncSessionLocal() as db:
        space = await Workspace.get_by(db, name=workspace)
        if space is None:
            space = await accounts.create_workspace(db, {"name": workspace})
        user = await accounts.get_user_by_username(db, username)
        if user is None:
            user = await User.create(
                db,
                first_name=username,
                username=username,
                role=UserRole.owner,
                password_hash=accounts.hash_password(password),
                api_key=api_key,
            )
            print(f"created owner {username!r}")
        else:
            await user.update(
                db, password_hash=accounts.hash_password(password), api_key=api_key
            )
        if (
            await WorkspaceUser.get_by(db, workspace_id=space.id, user_id=user.id)
            is None
        ):
            await WorkspaceUser.create(db, workspace_id=space.id, user_id=user.id)


def setup() -> None:
    """Migrate, then create or update the owner from JSON on standard input."""
    data = json.loads(sys.stdin.read())
    migrate()
    asyncio.run(
        _create_owner(
            data["username"], data["password"], data["api_key"], data["workspace"]
        )
    )


def server(host: str, port: int) -> None:
    """Serve the API and the web UI with uvicorn."""
    import uvicorn
    from argilla_server.search_engine import SearchEngine

    assert sql_engine.ENGINE_NAME in SearchEngine.registered_classes
    uvicorn.run("argilla_server:app", host=host, port=port, access_log=False)


def worker() -> None:
    """Run one rq worker on the server's queues, in this process."""
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE, REDIS_CONNECTION
    from rq import Worker

    Worker([HIGH_QUEUE, DEFAULT_QUEUE], connection=REDIS_CONNECTION).work()


def main() -> None:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup")
    serve = sub.add_parser("server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    sub.add_parser("worker")
    args = parser.parse_args()

    if args.command == "setup":
        setup()
    elif args.command == "server":
        server(args.host, args.port)
    else:
        worker()


if __name__ == "__main__":
    main()
