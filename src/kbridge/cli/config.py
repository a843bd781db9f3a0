"""``kbridge config set|unset|show``: a default connection and warehouse, not repeated per command.

The file is ``config.toml`` in the data directory (``$KBRIDGE_HOME``, else
the user data directory, beside the connection store), one table of strings::

    connection = "acme"
    warehouse = "postgresql://analyst@db/klaviyo"

Precedence, for each: a flag (``--connection``, ``--from``/``--to``), then
the environment (``KBRIDGE_CONNECTION``, ``KLAVIYO_API_KEY``;
``KBRIDGE_WAREHOUSE``), then this file, then the built-in default (the
warehouse ``duckdb:///./kbridge.duckdb``; no connection). The warehouse
becomes the default of each warehouse option when its command is built
(:func:`apply_warehouse_default`), so ``--help`` shows it; the connection
is resolved in :mod:`kbridge.cli.credentials`, where an ``--api-key`` or
``KLAVIYO_API_KEY`` must also be weighed against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from kbridge.core import ConfigurationError, dumps_str

__all__ = [
    "CONFIG_FILE_NAME",
    "CONNECTION_ENV",
    "KEYS",
    "WAREHOUSE_ENV",
    "app",
    "apply_warehouse_default",
    "config_path",
    "configured",
    "default_connection",
    "default_warehouse",
    "load",
]

CONFIG_FILE_NAME = "config.toml"
CONNECTION_ENV = "KBRIDGE_CONNECTION"
WAREHOUSE_ENV = "KBRIDGE_WAREHOUSE"
HOME_ENV = "KBRIDGE_HOME"
Key = Literal["connection", "warehouse"]
KEYS: dict[str, str] = {"connection": CONNECTION_ENV, "warehouse": WAREHOUSE_ENV}

#: command path → the option (parameter name) that names its warehouse; "*": any subcommand
WAREHOUSE_OPTIONS: dict[tuple[str, ...], str] = {
    ("sync",): "to",
    ("report",): "source",
    ("analytics", "*"): "source",
    ("privacy", "delete"): "to",
    ("campaigns", "performance"): "to",
}

app = typer.Typer(
    help="Defaults for every command: a connection and a warehouse (flags and env beat them).",
    no_args_is_help=True,
)


def config_path(env: Mapping[str, str]) -> Path:
    """``$KBRIDGE_HOME/config.toml``, else the user data directory's (the connection store's)."""
    home = env.get(HOME_ENV)
    if not home:
        import platformdirs

        home = platformdirs.user_data_dir("kbridge")
    return Path(home).expanduser() / CONFIG_FILE_NAME


def load(env: Mapping[str, str]) -> dict[str, str]:
    """The saved defaults (empty without a file); a malformed file is one clear error."""
    path = config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    # imported only when there is a file: its parser compiles its patterns on import (~20 ms)
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML ({exc}); fix or delete it") from None
    return {k: v for k, v in data.items() if k in KEYS and isinstance(v, str) and v}


def configured(key: Key, env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(value, where it came from)`` from the environment, else the file; ``None`` if unset."""
    from_env = env.get(KEYS[key])
    if from_env:
        return from_env, KEYS[key]
    saved = load(env).get(key)
    return (saved, str(config_path(env))) if saved else None


def default_connection(env: Mapping[str, str]) -> str | None:
    """The connection to use when no ``--connection`` is given (env, else the file)."""
    found = configured("connection", env)
    return found[0] if found else None


def default_warehouse(env: Mapping[str, str]) -> str | None:
    """The warehouse to use when no ``--from``/``--to`` is given (env, else the file)."""
    found = configured("warehouse", env)
    return found[0] if found else None


def _save(values: Mapping[str, str], env: Mapping[str, str]) -> Path:
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a JSON string is a valid TOML basic string; the file holds only strings
    lines = [f"{key} = {dumps_str(value)}\n" for key, value in sorted(values.items())]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _check_warehouse(url: str) -> None:
    if not url.startswith(("duckdb:///", "postgresql://", "postgres://")):
        raise ConfigurationError(
            f"not a warehouse URL: {url!r}; give duckdb:///relative.duckdb, "
            "duckdb:////absolute/path.duckdb or postgresql://user@host/db"
        )


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(
        p in ("*", q) for p, q in zip(pattern, path, strict=True)
    )


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _walk(sub, (*path, name))


def apply_warehouse_default(command: Any, name: str, env: Mapping[str, str]) -> None:
    """Make the configured warehouse the default of ``command``'s warehouse options.

    ``command`` is the Click command (or group) ``kbridge NAME``; a flag still
    beats it, and the declared default (``./kbridge.duckdb``) stays when
    nothing is configured. Done on the built command, so ``--help`` shows it.
    """
    if not any(pattern[0] == name for pattern in WAREHOUSE_OPTIONS):
        return  # nothing to read the file for (and `kbridge config` can mend a broken one)
    url = default_warehouse(env)
    if url is None:
        return
    for path, cmd in _walk(command, (name,)):
        wanted = {opt for pattern, opt in WAREHOUSE_OPTIONS.items() if _matches(pattern, path)}
        for param in cmd.params:
            if param.name in wanted:
                param.default = url


def _fail(exc: ConfigurationError) -> None:
    from kbridge.cli.output import fail

    fail(str(exc))


@app.command("set")
def set_cmd(
    key: Annotated[str, typer.Argument(help="connection or warehouse")],
    value: Annotated[str, typer.Argument(help="a saved connection's name, or a warehouse URL")],
) -> None:
    """Save a default: `kbridge config set connection acme`, `… warehouse duckdb:///kb.duckdb`."""
    try:
        if key not in KEYS:
            raise ConfigurationError(f"unknown setting {key!r}; choose connection or warehouse")
        if key == "warehouse":
            _check_warehouse(value)
        values = load(os.environ)
        values[key] = value
        path = _save(values, os.environ)
    except ConfigurationError as exc:
        _fail(exc)
        return
    typer.echo(f"{key} = {value} (saved in {path})")
    if os.environ.get(KEYS[key]):
        typer.echo(f"note: {KEYS[key]} is set and takes precedence over the file", err=True)


@app.command("unset")
def unset_cmd(key: Annotated[str, typer.Argument(help="connection or warehouse")]) -> None:
    """Forget a saved default."""
    try:
        if key not in KEYS:
            raise ConfigurationError(f"unknown setting {key!r}; choose connection or warehouse")
        values = load(os.environ)
        values.pop(key, None)
        _save(values, os.environ)
    except ConfigurationError as exc:
        _fail(exc)
        return
    typer.echo(f"{key} unset")


@app.command("show")
def show_cmd() -> None:
    """Each default in effect and where it comes from (environment or file)."""
    try:
        for key in KEYS:
            found = configured(key, os.environ)  # type: ignore[arg-type]
            shown = f"{found[0]}  (from {found[1]})" if found else "(not set)"
            typer.echo(f"{key}: {shown}")
    except ConfigurationError as exc:
        _fail(exc)
