"""The sandbox Shopify shop's OAuth: the token endpoint of both grants, installs, expiry, revocation.

What a Dev Dashboard app meets on a real store since 2026, on 127.0.0.1:

- ``POST /admin/oauth/access_token`` (form or JSON) with
  ``grant_type=client_credentials``: a token for ``token_lifetime`` seconds
  (Shopify: 86399), or ``shop_not_permitted`` when the shop does not allow the
  grant (a store of another organization);
- ``GET /admin/oauth/authorize?client_id&scope&redirect_uri&state``: the
  merchant's approval, given at once here, as a redirect to ``redirect_uri``
  with ``code``, ``hmac``, ``host``, ``shop``, ``state`` and ``timestamp``;
- the code exchange (``client_id``, ``client_secret``, ``code``, optionally
  ``expiring=1``): a non-expiring offline token, or one of
  ``offline_token_lifetime`` seconds (Shopify: 3600) with a refresh token;
- ``grant_type=refresh_token``: a new token and a new refresh token; the old
  refresh token keeps working until the new token is first used (Shopify's
  changelog of 2026-08-28).

Refusals have Shopify's shapes: an unknown client id is 400
``invalid_request`` "Could not find Shopify API application with api_key", a
wrong secret 401 ``invalid_client`` (RFC 6749 5.2), a used or unknown code 400
``invalid_request``. :meth:`ShopifyOAuth.revoke` makes a test's next API call
get 401, as an uninstall or a revoked token does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .http import Request, Response, Router, json_response

UNKNOWN_CLIENT = "Could not find Shopify API application with api_key"
BAD_SECRET = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)


@dataclass
class Issued:
    """One token handed out."""

    grant: str  # "static", "client_credentials", "authorization_code", "refresh_token"
    expires_at: datetime | None
    used: bool = False
    replaced_refresh: str | None = None  # retired when this token is first used


@dataclass
class _Refresh:
    expires_at: datetime


class ShopifyOAuth:
    def __init__(
        self,
        *,
        shop_domain: str,
        client_id: str,
        client_secret: str,
        scopes: Iterable[str],
        now: Callable[[], datetime],
        static_token: str | None = None,
        token_lifetime: float = 86399,
        offline_token_lifetime: float = 3600,
        refresh_token_lifetime: float = 90 * 86400,
        client_credentials_allowed: bool = True,
    ) -> None:
        self.shop_domain = shop_domain
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = tuple(scopes)
        self.now = now
        self.token_lifetime = token_lifetime
        self.offline_token_lifetime = offline_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.client_credentials_allowed = client_credentials_allowed
        self.tokens: dict[str, Issued] = {}
        if static_token:
            self.tokens[static_token] = Issued("static", None)
        self._codes: dict[str, datetime] = {}
        self._refresh: dict[str, _Refresh] = {}
        #: Every token request answered, oldest first: (grant_type, HTTP status).
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def add_routes(self, router: Router) -> None:
        router.add("POST", r"/admin/oauth/access_token", self._token)
        router.add("GET", r"/admin/oauth/authorize", self._authorize)
        # From a shell: make the running deployment's next call meet a revoked token.
        router.add("POST", r"/_sandbox/tokens/revoke", lambda _request: json_response({"revoked": self.revoke()}))

    # -- what the API and tests use ------------------------------------------
    def accepts(self, token: str) -> bool:
        """Whether an API call with this token is let in (and it is now in use)."""
        with self._lock:
            issued = self.tokens.get(token)
            if issued is None or (issued.expires_at is not None and self.now() >= issued.expires_at):
                return False
            if not issued.used:
                issued.used = True
                if issued.replaced_refresh:
                    self._refresh.pop(issued.replaced_refresh, None)
            return True

    def revoke(self, token: str | None = None) -> int:
        """Revoke one token, or every granted one (not the static token); return how many."""
        with self._lock:
            doomed = [token] if token else [t for t, i in self.tokens.items() if i.grant != "static"]
            for value in doomed:
                self.tokens.pop(value, None)
            return len(doomed)

    def granted(self) -> list[str]:
        """The tokens handed out by a grant and still valid now."""
        now = self.now()
        with self._lock:
            return [
                token
                for token, issued in self.tokens.items()
                if issued.grant != "static" and (issued.expires_at is None or now < issued.expires_at)
            ]

    # -- the endpoints -----------------------------------------------------------
    def _token(self, request: Request) -> Response:
        form = _form(request)
        grant = form.get("grant_type") or ("authorization_code" if "code" in form else "")
        response = self._answer(grant, form)
        self.requests.append((grant, response.status))
        return response

    def _answer(self, grant: str, form: dict[str, str]) -> Response:
        if form.get("client_id") != self.client_id:
            return json_response({"error": "invalid_request", "error_description": UNKNOWN_CLIENT}, 400)
        if not hmac.compare_digest(form.get("client_secret", "").encode(), self.client_secret.encode()):
            return json_response({"error": "invalid_client", "error_description": BAD_SECRET}, 401)
        now = self.now()
        with self._lock:
            if grant == "client_credentials":
                if not self.client_credentials_allowed:
                    return json_response(
                        {
                            "error": "shop_not_permitted",
                            "error_description": "Client credentials cannot be performed on this shop.",
                        },
                        400,
                    )
                return json_response(self._issue("client_credentials", now, self.token_lifetime))
            if grant == "authorization_code":
                issued_at = self._codes.pop(form.get("code", ""), None)
                if issued_at is None or now - issued_at > timedelta(minutes=10):
                    return json_response(
                        {
                            "error": "invalid_request",
                            "error_description": "The authorization code was not found or was already used",
                        },
                        400,
                    )
                if form.get("expiring") == "1":
                    return json_response(self._issue_expiring("authorization_code", now))
                return json_response(self._issue("authorization_code", now, None))
            if grant == "refresh_token":
                refresh = self._refresh.get(form.get("refresh_token", ""))
                if refresh is None or now >= refresh.expires_at:
                    return json_response(
                        {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired"}, 400
                    )
                return json_response(self._issue_expiring("refresh_token", now, replaces=form["refresh_token"]))
        return json_response(
            {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r} is not supported"}, 400
        )

    def _issue(self, grant: str, now: datetime, lifetime: float | None) -> dict[str, Any]:
        token = "shpat_" + secrets.token_hex(16)
        expires = now + timedelta(seconds=lifetime) if lifetime is not None else None
        self.tokens[token] = Issued(grant, expires)
        answer: dict[str, Any] = {"access_token": token, "scope": ",".join(self.scopes)}
        if lifetime is not None:
            answer["expires_in"] = int(lifetime)
        return answer

    def _issue_expiring(self, grant: str, now: datetime, replaces: str | None = None) -> dict[str, Any]:
        answer = self._issue(grant, now, self.offline_token_lifetime)
        refresh = "shprt_" + secrets.token_hex(16)
        self._refresh[refresh] = _Refresh(now + timedelta(seconds=self.refresh_token_lifetime))
        self.tokens[answer["access_token"]].replaced_refresh = replaces
        return {**answer, "refresh_token": refresh, "refresh_token_expires_in": int(self.refresh_token_lifetime)}

    def _authorize(self, request: Request) -> Response:
        query = request.query
        if query.get("client_id") != self.client_id:
            return _oauth_error(UNKNOWN_CLIENT)
        redirect = query.get("redirect_uri", "")
        if urlsplit(redirect).scheme not in ("http", "https"):
            return _oauth_error("The redirect_uri is missing or not allowed")
        code = secrets.token_hex(16)
        now = self.now()
        with self._lock:
            self._codes[code] = now
        host = base64.b64encode(f"{self.shop_domain}/admin".encode()).decode().rstrip("=")
        params = {
            "code": code,
            "host": host,
            "shop": self.shop_domain,
            "state": query.get("state", ""),
            "timestamp": str(int(now.timestamp())),
        }
        params["hmac"] = redirect_hmac(self.client_secret, params.items())
        separator = "&" if urlsplit(redirect).query else "?"
        return Response(302, b"", {"Location": f"{redirect}{separator}{urlencode(params)}"})


def redirect_hmac(secret: str, params: Iterable[tuple[str, str]]) -> str:
    """Hex HMAC-SHA256 of the sorted ``key=value`` pairs joined by ``&`` (``%``, ``&`` and a
    key's ``=`` percent-escaped), as Shopify signs an OAuth redirect."""
    message = "&".join(
        sorted(
            f"{key.replace('%', '%25').replace('=', '%3D')}={value.replace('%', '%25')}".replace("&", "%26")
            for key, value in params
            if key != "hmac"
        )
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _oauth_error(description: str) -> Response:
    """The plain page Shopify shows for a broken authorize link."""
    return Response(400, f"Oauth error invalid_request: {description}".encode(), {"Content-Type": "text/plain"})


def _form(request: Request) -> dict[str, str]:
    """The token request's fields: form-encoded (the docs' example) or JSON (Shopify's JS library)."""
    if "json" in request.headers.get("content-type", ""):
        try:
            data = request.json()
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))


__all__: Sequence[str] = ("ShopifyOAuth", "redirect_hmac")
