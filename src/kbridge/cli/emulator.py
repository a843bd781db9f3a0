"""``kbridge emulator``: run the local Klaviyo-compatible API server."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from kbridge.api.ratelimit import parse_limit_factor
from kbridge.cli.output import fail
from kbridge.core import dumps
from kbridge.emulator.config import EmulatorConfig, OAuthConsent, RateLimitAlgorithm

app = typer.Typer(help="A local Klaviyo-compatible API server (for tests, demos, benchmarks).")

_PRIVATE_KEY = re.compile(r"^pk_[A-Za-z0-9]{20,64}$")
_ALGORITHMS: tuple[RateLimitAlgorithm, ...] = ("fixed-window", "leaky-bucket")
_CONSENTS: tuple[OAuthConsent, ...] = ("auto", "page", "deny")


def _int(option: str, value: str, *, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        fail(f"{option} must be an integer, got {value!r}")
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        fail(f"{option} must be {bound}, got {number}")
    return number


def parse_rate_limits(value: str) -> float | None:
    """``spec`` → 1.0 (Klaviyo's published limits), ``off`` → None, a number → that factor.

    The same reading as ``kbridge sync --rate-limits`` (the client's side).
    """
    try:
        return parse_limit_factor(value)
    except ValueError as exc:
        fail(f"--rate-limits {exc}")


def _algorithm(value: str) -> RateLimitAlgorithm:
    for name in _ALGORITHMS:
        if value == name:
            return name
    return fail(f"--rate-limit-algorithm must be one of {', '.join(_ALGORITHMS)}, got {value!r}")


def _consent(value: str) -> OAuthConsent:
    for name in _CONSENTS:
        if value == name:
            return name
    return fail(f"--oauth-consent must be one of {', '.join(_CONSENTS)}, got {value!r}")


def _positive_seconds(option: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        fail(f"{option} must be a number of seconds, got {value!r}")
    if not 0 < seconds < float("inf"):
        fail(f"{option} must be a positive number of seconds, got {value!r}")
    return seconds


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[str, typer.Option(help="TCP port (0 = any free port)")] = "8765",
    seed: Annotated[str, typer.Option(help="seed of the synthetic account")] = "42",
    profiles: Annotated[str, typer.Option(help="number of synthetic profiles")] = "1000",
    events: Annotated[str, typer.Option(help="number of synthetic events")] = "10000",
    accounts: Annotated[
        str,
        typer.Option(
            help="serve this many independent accounts; account i is generated from "
            "seed + i on first use and has its own keys and rate limits"
        ),
    ] = "1",
    rate_limits: Annotated[
        str, typer.Option(help="'spec' (Klaviyo's limits), 'off', or a factor such as 0.1")
    ] = "spec",
    rate_limit_algorithm: Annotated[
        str, typer.Option(help="fixed-window (Klaviyo's documented model) or leaky-bucket")
    ] = "fixed-window",
    api_key: Annotated[
        str | None,
        typer.Option(help="full-access private key (default: derived from the seed)"),
    ] = None,
    data_file: Annotated[
        Path | None,
        typer.Option(
            help="load the account from this JSON file (written by `kbridge emulator generate`) "
            "instead of generating it"
        ),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(
            help="inject faults on /api/*, e.g. "
            "'http500=0.02,http503=0.01,timeout=0.01@2s,reset=0.01,latency=20ms±10ms,"
            "truncate=0.005,http429=0.01@2s*3' (deterministic under --seed)"
        ),
    ] = None,
    oauth_consent: Annotated[
        str, typer.Option(help="/oauth/authorize: auto (approve), page (consent form) or deny")
    ] = "auto",
    oauth_access_ttl: Annotated[
        str, typer.Option(help="OAuth access-token lifetime in simulated seconds")
    ] = "3600",
    job_delay: Annotated[
        str,
        typer.Option(help="simulated seconds an async job (bulk import, subscribe …) is queued"),
    ] = "0",
    import_rate: Annotated[
        str | None,
        typer.Option(
            help="profiles a bulk import job processes per simulated second (default: at once)"
        ),
    ] = None,
    truth_out: Annotated[
        Path | None, typer.Option(help="write the generator's ground truth here (JSON)")
    ] = None,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="required with a --host beyond loopback: /_emulator/... then needs "
            "'Authorization: Bearer TOKEN'",
            envvar="KBRIDGE_EMULATOR_ADMIN_TOKEN",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Serve the emulator until Ctrl-C; prints its base URL and full-access key."""
    from kbridge.emulator.http.faults import FaultSpecError, parse_faults
    from kbridge.emulator.server import EmulatorServerError, bind_socket, check_exposure, serve

    try:
        parse_faults(faults)
    except FaultSpecError as exc:
        fail(f"--faults: {exc}")
    config = EmulatorConfig(
        seed=_int("--seed", seed, minimum=0),
        profiles=_int("--profiles", profiles, minimum=0),
        events=_int("--events", events, minimum=0),
        accounts=_int("--accounts", accounts, minimum=1, maximum=1000),
        rate_limit_factor=parse_rate_limits(rate_limits),
        rate_limit_algorithm=_algorithm(rate_limit_algorithm),
        api_key=api_key,
        faults=faults,
        oauth_consent=_consent(oauth_consent),
        oauth_access_token_ttl=_positive_seconds("--oauth-access-ttl", oauth_access_ttl),
        admin_token=admin_token or None,
        job_delay_seconds=0.0 if job_delay == "0" else _positive_seconds("--job-delay", job_delay),
        import_profiles_per_second=None
        if import_rate is None
        else _positive_seconds("--import-rate", import_rate),
    )
    port_number = _int("--port", port, minimum=0, maximum=65535)
    if api_key is not None and not _PRIVATE_KEY.match(api_key):
        fail("--api-key must look like a Klaviyo private key: 'pk_' followed by letters/digits")
    if data_file is not None:
        if not data_file.is_file():
            fail(f"--data-file: no such file {str(data_file)!r}")
        if config.accounts > 1:
            fail("--data-file serves one account; drop --accounts or --data-file")
        config = replace(config, data_file=str(data_file))

    from kbridge.emulator.datagen import DatasetFileError
    from kbridge.emulator.http.app import create_app

    try:
        check_exposure(host, config)
        sock = bind_socket(host, port_number)
    except EmulatorServerError as exc:
        fail(str(exc))
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown}:{bound}"
    try:
        app_ = create_app(replace(config, public_base_url=base_url))
    except DatasetFileError as exc:
        sock.close()
        fail(f"--data-file: {exc}")
    state = app_.state.emulator
    if truth_out is not None:
        truth_out.write_bytes(dumps(state.backend.truth(), indent=True))
    typer.echo(f"Klaviyo emulator listening on {base_url}")
    typer.echo(f"private key (full access): {state.api_key}")
    every = app_.state.accounts
    for index in range(1, every.count):
        typer.echo(f"account {index} private key (full access): {every.full_access_key(index)}")
    typer.echo("press Ctrl-C to stop", err=True)
    serve(config, host, bound, sock=sock, app=app_)


@app.command("generate")
def generate_cmd(
    out: Annotated[Path, typer.Argument(help="the JSON file to write (replaced)")],
    seed: Annotated[str, typer.Option(help="seed of the synthetic account")] = "42",
    profiles: Annotated[str, typer.Option(help="number of synthetic profiles")] = "1000",
    events: Annotated[str, typer.Option(help="number of synthetic events")] = "10000",
) -> None:
    """Write a synthetic account to a file that `serve --data-file` loads.

    The account is generated as of now; a file keeps it fixed across days and
    machines (a generated one moves with the clock), and can be edited by hand.
    """
    from kbridge.core.clock import SystemClock
    from kbridge.emulator.datagen import dump, generate

    dataset = generate(
        _int("--seed", seed, minimum=0),
        _int("--profiles", profiles, minimum=0),
        _int("--events", events, minimum=0),
        SystemClock().now(),
    )
    try:
        dump(dataset, out)
    except OSError as exc:
        fail(f"cannot write {str(out)!r}: {exc.strerror}")
    typer.echo(
        f"wrote {len(dataset.profiles):,} profiles and {len(dataset.events.ts):,} events to {out}"
    )
