"""``/oauth/authorize``, ``/oauth/token`` and ``/oauth/revoke`` over HTTP (digest §4).

The wire protocol is Klaviyo's: the authorize step redirects (302) back to
the client with ``code`` and ``state`` (or ``error``, ``error_description``
and ``state``); token and revoke calls are form-encoded POSTs with
``Authorization: Basic base64(client_id:client_secret)`` (the id and secret
may instead be sent as form fields, never both ways at once), answered with
JSON. Errors are RFC 6749 JSON bodies, never JSON:API: OAuth clients read
``error`` at the top level. Fault injection never applies here.
"""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote_plus, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from kbridge.core import dumps
from kbridge.emulator.config import OAuthConsent
from kbridge.emulator.oauth.authority import AuthorizationRequest, OAuthAuthority, OAuthClient
from kbridge.emulator.oauth.errors import AuthorizeError, OAuthError

__all__ = ["oauth_routes"]

_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_DENIED = "The user denied the authorization request."


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={**_NO_STORE, **(headers or {})},
    )


def _error_response(error: OAuthError) -> Response:
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="kbridge-emulator"'
    return _json(error.payload(), error.status, headers)


def _parse_form(raw: bytes) -> dict[str, str]:
    """A urlencoded body as a dict; a repeated parameter is ``invalid_request`` (RFC 6749 §3.2)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "The form body is not valid UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f'The "{name}" parameter was sent more than once.')
        form[name] = value
    return form


async def _form_body(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != _FORM:
        raise OAuthError(
            "invalid_request",
            f"The body must be form-encoded (Content-Type: {_FORM}), not JSON or multipart.",
        )
    return _parse_form(await request.body())


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise OAuthError(
            "invalid_client", "The Authorization header must use the Basic scheme for clients."
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client", "The Basic Authorization header is not valid base64."
        ) from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise OAuthError(
            "invalid_client", "The Basic credentials must be base64(client_id:client_secret)."
        )
    return unquote_plus(client_id), unquote_plus(client_secret)


def _client(authority: OAuthAuthority, request: Request, form: dict[str, str]) -> OAuthClient:
    """The authenticated client, by Basic header or by form fields (one method only)."""
    header = request.headers.get("authorization")
    if header:
        if "client_secret" in form:
            raise OAuthError(
                "invalid_request",
                "Send client credentials either in the Basic header or in the form, not both.",
            )
        client_id, client_secret = _basic_credentials(header)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client", "The form client_id differs from the Basic one.")
        return authority.authenticate_client(client_id, client_secret)
    return authority.authenticate_client(form.get("client_id"), form.get("client_secret"))


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in uri else "?"
    return RedirectResponse(f"{uri}{separator}{query}", status_code=302, headers=_NO_STORE)


def _consent_page(request: AuthorizationRequest, params: dict[str, str]) -> Response:
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k != "decision"
    )
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in sorted(request.scopes))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize application</title></head>
<body>
<h1>Authorize application</h1>
<p>Client <code>{html.escape(request.client.client_id)}</code> asks for:</p>
<ul>{scopes}</ul>
<form method="post" action="/oauth/authorize">
{hidden}
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
"""
    return HTMLResponse(page, headers=_NO_STORE)


def oauth_routes(authority: OAuthAuthority, consent: Callable[[], OAuthConsent]) -> list[BaseRoute]:
    """The three OAuth endpoints bound to ``authority``; ``consent`` reads the current mode."""

    async def authorize(request: Request) -> Response:
        if request.method == "POST":
            try:
                params = _parse_form(await request.body())
            except OAuthError as exc:
                return _json(exc.payload(), 400)
        else:
            params = dict(request.query_params)
        try:
            checked = authority.check_authorization(params)
        except AuthorizeError as exc:
            if not exc.redirectable:
                return _json(exc.payload(), 400)
            redirect_uri = params["redirect_uri"]
            return _redirect(redirect_uri, {**exc.payload(), "state": params.get("state")})
        mode = consent()
        if request.method == "POST":
            approved = params.get("decision") == "approve"
        elif mode == "page":
            return _consent_page(checked, params)
        else:
            approved = mode == "auto"
        if not approved:
            return _redirect(
                checked.redirect_uri,
                {"error": "access_denied", "error_description": _DENIED, "state": checked.state},
            )
        code = authority.issue_code(checked)
        return _redirect(checked.redirect_uri, {"code": code, "state": checked.state})

    async def token(request: Request) -> Response:
        try:
            form = await _form_body(request)
            client = _client(authority, request, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise OAuthError("invalid_request", 'The "grant_type" parameter is required.')
            if grant_type == "authorization_code":
                payload = authority.exchange_code(
                    client,
                    code=form.get("code"),
                    code_verifier=form.get("code_verifier"),
                    redirect_uri=form.get("redirect_uri"),
                )
            elif grant_type == "refresh_token":
                payload = authority.refresh(
                    client, refresh_token=form.get("refresh_token"), scope=form.get("scope")
                )
            else:
                raise OAuthError(
                    "unsupported_grant_type",
                    'grant_type must be "authorization_code" or "refresh_token".',
                )
        except OAuthError as exc:
            return _error_response(exc)
        return _json(payload)

    async def revoke(request: Request) -> Response:
        try:
            form = await _form_body(request)
            client = _client(authority, request, form)
            authority.revoke(client, form.get("token"))
        except OAuthError as exc:
            return _error_response(exc)
        return Response(b"", status_code=200, headers=_NO_STORE)

    return [
        Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
    ]
