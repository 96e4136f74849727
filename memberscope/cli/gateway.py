"""The gateway's commands: ``serve`` and ``keys create|list|revoke``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from memberscope.cli._app import app, console
from memberscope.exceptions import InvalidInputError, MissingDependencyError

keys_app = typer.Typer(help="Create, list and revoke the gateway's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ENV_MODEL, ENV_POLICY = "MEMBERSCOPE_GATEWAY_MODEL", "MEMBERSCOPE_GATEWAY_POLICY"


def app_from_env():
    """Factory for uvicorn's worker processes: the app for the model and policy named in the environment."""
    from memberscope.gateway import create_app, load_model, load_policy

    policy = load_policy(os.environ[ENV_POLICY])
    model = load_model(
        os.environ[ENV_MODEL], n_features=policy.model.get("n_features"), n_classes=policy.model.get("n_classes")
    )
    return create_app(model, policy)


@app.command()
def serve(
    model: Path = typer.Option(
        ..., "--model", help="Saved model: joblib sklearn, TorchScript, torch.save, memberscope."
    ),
    policy: Path = typer.Option(..., "--policy", help="Policy YAML: tiers, limits, probing, audit log."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, help="Worker processes (more than one needs redis:// storage in the policy)."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Serve a model behind API keys, rate limits, an output policy, probing detection and an audit log."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingDependencyError("`memberscope serve` needs uvicorn: pip install 'memberscope[serve]'") from None
    from memberscope.gateway import load_model, load_policy

    if workers < 1:
        raise InvalidInputError(f"--workers must be >= 1; got {workers}")
    pol = load_policy(policy)
    if workers > 1 and pol.storage.startswith("memory://"):
        raise InvalidInputError(
            f"--workers {workers} with storage memory:// would give each worker its own rate limits; "
            "set storage: redis://HOST:PORT in the policy"
        )
    served = load_model(model, n_features=pol.model.get("n_features"), n_classes=pol.model.get("n_classes"))
    console().print(
        f"serving {model} ({served.n_features} features, {served.n_classes} classes) on http://{host}:{port} "
        f"with {workers} worker(s); tiers: {', '.join(pol.tiers)}",
        highlight=False,
    )
    from memberscope.gateway.server import run_server, server_config

    if workers == 1:
        from memberscope.gateway import create_app

        asgi_app: Any = create_app(served, pol)
    else:
        os.environ[ENV_MODEL], os.environ[ENV_POLICY] = str(Path(model).resolve()), str(Path(policy).resolve())
        asgi_app = "memberscope.cli.gateway:app_from_env"  # each worker builds its own (a factory)
    run_server(
        server_config(asgi_app, pol, host=host, port=port, workers=workers, log_level=log_level, factory=workers > 1)
    )


def _store(db: Path | None, policy: Path | None):
    from memberscope.gateway.keys import KeyStore
    from memberscope.gateway.policy import load_policy

    pol = load_policy(policy) if policy is not None else None
    path = db if db is not None else (pol.keys_db if pol is not None else None)
    if path is None:
        raise InvalidInputError("give --db PATH (the key database) or --policy PATH (whose keys_db is used)")
    return KeyStore(path), pol


@keys_app.command("create")
def keys_create(
    tier: str = typer.Option(..., "--tier", help="Tier of the policy the key belongs to."),
    db: Path | None = typer.Option(None, "--db", help="Key database (SQLite); default: the policy's keys_db."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML, to check the tier exists."),
    label: str | None = typer.Option(None, help="A note stored with the key (who it is for)."),
    tenant: str | None = typer.Option(
        None, help="Tenant the key belongs to: probing detection adds up the queries of a tenant's keys."
    ),
) -> None:
    """Create a key and print it once: only its salted hash is stored."""
    store, pol = _store(db, policy)
    if pol is not None and tier not in pol.tiers:
        raise InvalidInputError(f"tier {tier!r} is not in the policy; expected one of: {', '.join(pol.tiers)}")
    key_id, key = store.create(tier, label=label, tenant=tenant)
    store.close()
    typer.echo(key)
    owner = f", tenant {tenant}" if tenant else ""
    typer.echo(f"key id {key_id}, tier {tier}{owner}: store the key now, it cannot be shown again", err=True)


@keys_app.command("list")
def keys_list(
    db: Path | None = typer.Option(None, "--db", help="Key database (SQLite); default: the policy's keys_db."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML whose keys_db is used."),
) -> None:
    """List key ids, tiers, creation time, state, tenant and label (never the keys or their hashes)."""
    import datetime as dt

    store, _ = _store(db, policy)
    for rec in store.list():
        created = dt.datetime.fromtimestamp(rec.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        state = "active" if rec.revoked is None else "revoked"
        typer.echo(f"{rec.key_id}\t{rec.tier}\t{created}\t{state}\t{rec.tenant or ''}\t{rec.label or ''}")
    store.close()


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="Id of the key (the part after msk_, as `keys list` shows)."),
    db: Path | None = typer.Option(None, "--db", help="Key database (SQLite); default: the policy's keys_db."),
    policy: Path | None = typer.Option(None, "--policy", help="Policy YAML whose keys_db is used."),
) -> None:
    """Revoke a key; running gateways refuse it within key_cache_seconds (default 1 s)."""
    store, _ = _store(db, policy)
    store.revoke(key_id)
    store.close()
    typer.echo(f"revoked {key_id}")
