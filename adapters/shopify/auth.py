"""How the Shopify adapter gets the Admin API token it sends with every call.

Three ways, one per kind of app (see settings.py): a static token of a legacy
custom app; the client credentials grant of a Dev Dashboard app on a store its
organization owns; the authorization code grant (an install through a link)
on anyone else's store. Both grants give tokens that expire: client
credentials after about 24 hours, expiring offline tokens after an hour with a
refresh token that Shopify replaces on each use.

A granted token is kept in the shop's ShopState, so in the store: every process
of a deployment (serve, worker, sync, check) shares one token instead of each
asking Shopify for its own. The token and the refresh token are sealed with
the core's SecretBox (the deployment's ``secret_key``) before they are stored.
A token is renewed a while before it expires (a tenth of its lifetime, at most
five minutes), and once more when Shopify answers 401 to a call (revoked, or
the app reinstalled); the client then retries that call once.

No token, code or client secret ever goes into a log line or a message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from aftercare.platform import InstallRejected, PlatformError, SecretBox, ShopState

from .settings import SHOP_DOMAIN, ShopifySettings

log = logging.getLogger(__name__)

#: ShopState keys: the granted token, and the nonces of install links not used yet.
TOKEN_KEY = "admin_token"
INSTALL_STATES_KEY = "install_states"
#: Renew at most this long before the expiry (a tenth of the lifetime when that is shorter).
MAX_RENEWAL_MARGIN = timedelta(minutes=5)
_HIDDEN = "**********"


def install_command(shop_id: str) -> str:
    return f"aftercare shopify install --shop {shop_id}"


def query_hmac(secret: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Shopify's signature of an OAuth redirect: hex HMAC-SHA256 of the sorted ``k=v`` pairs
    but ``hmac`` (and the legacy ``signature``), joined with ``&``; ``%``, ``&`` and a key's
    ``=`` are escaped so no value can pass for a delimiter."""
    parts = []
    for key, value in pairs:
        if key in ("hmac", "signature"):
            continue
        key = key.replace("%", "%25").replace("=", "%3D")
        value = value.replace("%", "%25")
        parts.append(f"{key}={value}".replace("&", "%26"))
    message = "&".join(sorted(parts))
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


class TokenSource:
    """The static token of a legacy custom app: sent as is, nothing to renew."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    def token(self) -> str:
        """The token to send now (obtaining or renewing it first when needed)."""
        return self._token

    def renew(self, rejected: str) -> bool:
        """Shopify answered 401 to ``rejected``: get another one. False if there is none to get."""
        return False

    def rejection(self) -> str:
        """What to tell the merchant when Shopify refuses the token we have."""
        return "Shopify rejected the access token (HTTP 401): check access_token"

    def describe(self) -> str:
        return "static access token (legacy custom app)"


@dataclass(frozen=True, slots=True)
class Grant:
    """A granted token as kept in ShopState, opened."""

    access_token: str
    obtained_at: datetime
    expires_at: datetime | None
    scope: str
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None

    def due(self, now: datetime) -> bool:
        """True when the token expires within the renewal margin (or has expired)."""
        if self.expires_at is None:
            return False
        margin = min(MAX_RENEWAL_MARGIN, (self.expires_at - self.obtained_at) / 10)
        return now >= self.expires_at - margin


class GrantedToken(TokenSource):
    """A token from the client credentials grant or from an install, kept in the store."""

    def __init__(
        self,
        shop_id: str,
        settings: ShopifySettings,
        state: ShopState,
        box: SecretBox | None,
        session: requests.Session,
        now: Callable[[], datetime],
    ) -> None:
        assert settings.client_id and settings.client_secret is not None  # the settings check this
        self.shop_id = shop_id
        self.settings = settings
        self.state = state
        self.box = box
        self.session = session
        self.now = now
        self.client_id = settings.client_id
        self._client_secret = settings.client_secret.get_secret_value()
        self._lock = threading.Lock()  # one renewal at a time in this process
        self._known: Grant | None = None  # the last grant read or obtained: no store read per call

    @property
    def installs(self) -> bool:
        return self.settings.grant == "authorization_code"

    # -- TokenSource --------------------------------------------------------
    def token(self) -> str:
        with self._lock:
            known = self._known
            if known is not None and not known.due(self.now()):
                return known.access_token
            grant, problem = self.stored()  # another process may have renewed it already
            if grant is None or grant.due(self.now()):
                grant = self._obtain(grant, problem)
            self._known = grant
            return grant.access_token

    def renew(self, rejected: str) -> bool:
        with self._lock:
            grant, problem = self.stored()
            if grant is not None and grant.access_token != rejected and not grant.due(self.now()):
                self._known = grant  # another process renewed it meanwhile: use theirs
                return True
            log.info("shop %s: Shopify refused the Admin API token (HTTP 401); getting a new one", self.shop_id)
            self._known = self._obtain(grant, problem, rejected=True)
            return True

    def rejection(self) -> str:
        if self.installs:
            return (
                "Shopify rejected the installed app's token (HTTP 401): the app was uninstalled or its "
                f"access revoked; install it again with `{install_command(self.shop_id)}`"
            )
        return (
            "Shopify rejected a token it had just issued (HTTP 401): is the app still installed "
            "on the store? (check client_id)"
        )

    def describe(self) -> str:
        if not self.installs:
            return "client credentials"
        grant, problem = self.stored()
        if grant is None:
            reason = problem or "not installed yet"
            return f"authorization code ({reason}: run {install_command(self.shop_id)})"
        return f"authorization code (installed; scopes: {grant.scope or 'none reported'})"

    # -- the stored grant ---------------------------------------------------
    def stored(self) -> tuple[Grant | None, str]:
        """The kept grant, or None and why not ('' when there simply is none)."""
        record = self.state.get(TOKEN_KEY)
        if not isinstance(record, dict) or record.get("client_id") != self.client_id:
            return None, ""  # none yet, or a token of another app (client_id changed)
        if record.get("grant") != self.settings.grant:
            return None, ""
        try:
            return (
                Grant(
                    access_token=self._open(record["access_token"]),
                    obtained_at=datetime.fromisoformat(record["obtained_at"]),
                    expires_at=_moment(record.get("expires_at")),
                    scope=str(record.get("scope") or ""),
                    refresh_token=self._open(record["refresh_token"]) if record.get("refresh_token") else None,
                    refresh_expires_at=_moment(record.get("refresh_expires_at")),
                ),
                "",
            )
        except ValueError as exc:
            log.warning("shop %s: the stored Admin API token cannot be used: %s", self.shop_id, exc)
            return None, "the stored token cannot be opened with secret_key (was it changed?)"
        except (KeyError, TypeError):
            return None, "the stored token is unreadable"

    def _keep(self, answer: Mapping[str, Any], previous: Grant | None) -> Grant:
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise PlatformError("Shopify's token answer has no access_token", transient=False)
        now = self.now()
        refresh = answer.get("refresh_token")
        grant = Grant(
            access_token=token,
            obtained_at=now,
            expires_at=_after(now, answer.get("expires_in")),
            scope=str(answer.get("scope") or ""),
            refresh_token=refresh if isinstance(refresh, str) and refresh else (previous and previous.refresh_token),
            refresh_expires_at=_after(now, answer.get("refresh_token_expires_in"))
            or (previous.refresh_expires_at if previous and not refresh else None),
        )
        self.state.set(
            TOKEN_KEY,
            {
                "grant": self.settings.grant,
                "client_id": self.client_id,
                "access_token": self._seal(grant.access_token),
                "obtained_at": grant.obtained_at.isoformat(),
                "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
                "scope": grant.scope,
                "refresh_token": self._seal(grant.refresh_token) if grant.refresh_token else None,
                "refresh_expires_at": grant.refresh_expires_at.isoformat() if grant.refresh_expires_at else None,
            },
        )
        log.info(
            "shop %s: new Admin API token (%s), %s",
            self.shop_id,
            self.settings.grant.replace("_", " "),
            f"expires {grant.expires_at.isoformat()}" if grant.expires_at else "does not expire",
        )
        return grant

    def _seal(self, value: str) -> str:
        if self.box is None:  # the core refuses such a config; never store a token in clear
            raise PlatformError("secret_key is not set: cannot keep the Admin API token", transient=False)
        return self.box.encrypt(value)

    def _open(self, value: str) -> str:
        if self.box is None:
            raise ValueError("secret_key is not set")
        return self.box.decrypt(value)

    # -- asking Shopify -------------------------------------------------------
    def _obtain(self, grant: Grant | None, problem: str, *, rejected: bool = False) -> Grant:
        form = {"client_id": self.client_id, "client_secret": self._client_secret}
        if not self.installs:
            answer = self._post({"grant_type": "client_credentials", **form}, "client credentials")
            return self._keep(answer, None)
        again = f"install the app again with `{install_command(self.shop_id)}`"
        if grant is None:
            raise PlatformError(
                f"{problem}: {again}" if problem else f"not installed yet: run `{install_command(self.shop_id)}`",
                transient=False,
            )
        now = self.now()
        if grant.refresh_token is None:
            raise PlatformError(self.rejection() if rejected else f"the token has expired: {again}", transient=False)
        if grant.refresh_expires_at is not None and now >= grant.refresh_expires_at:
            raise PlatformError(f"the refresh token expired on {grant.refresh_expires_at:%Y-%m-%d}: {again}",
                                transient=False)  # fmt: skip
        answer = self._post({"grant_type": "refresh_token", "refresh_token": grant.refresh_token, **form}, "refresh")
        return self._keep(answer, grant)

    def _post(self, form: dict[str, str], grant: str) -> dict[str, Any]:
        url = self.settings.token_url
        try:
            response = self.session.post(
                url,
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
            )
        except requests.exceptions.SSLError as exc:
            raise PlatformError(self._scrub(f"TLS failure talking to {url}: {exc}"), transient=False) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise PlatformError(self._scrub(f"network error talking to {url}: {exc}"), transient=True) from None
        status = response.status_code
        payload = _json(response)
        if status == 429 or status >= 500:
            raise PlatformError(f"Shopify answered HTTP {status} to the token request ({grant})", transient=True)
        if status >= 400 or payload is None or not payload.get("access_token"):
            raise PlatformError(self._scrub(self._refusal(grant, status, payload, response)), transient=False)
        return payload

    def _refusal(self, grant: str, status: int, payload: dict[str, Any] | None, response: requests.Response) -> str:
        """One line: what Shopify said, and which key to check."""
        error = str((payload or {}).get("error") or "")
        description = str((payload or {}).get("error_description") or (payload or {}).get("errors") or "")
        said = ": ".join(part for part in (error, description) if part) or (response.text[:200].strip() or "no reason")
        lowered = said.lower()
        if error == "shop_not_permitted":
            hint = (
                "the client credentials grant works only on stores the app's organization owns; "
                "for a client's store set install = true and run "
                f"`{install_command(self.shop_id)}`"
            )
        elif "api_key" in lowered or "application" in lowered and "find" in lowered:
            hint = "check client_id"
        elif error == "invalid_client":
            hint = "check client_secret"
        elif grant == "refresh":
            hint = f"install the app again with `{install_command(self.shop_id)}`"
        elif grant == "authorization code":
            hint = "follow a new install link"
        else:
            hint = "check client_id and client_secret"
        return f"Shopify refused the {grant} token request (HTTP {status}, {said}): {hint}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._client_secret, _HIDDEN) if self._client_secret else text

    # -- installs (the authorization code grant) -------------------------------
    def install_url(self, redirect_uri: str, scopes: Sequence[str], valid_for: timedelta) -> str:
        nonce = secrets.token_urlsafe(24)
        now = self.now()
        pending = {
            key: until
            for key, until in (self.state.get(INSTALL_STATES_KEY) or {}).items()
            if (_moment(until) or now) > now
        }
        pending[_digest(nonce)] = (now + valid_for).isoformat()
        self.state.set(INSTALL_STATES_KEY, pending)
        query = urlencode(
            {"client_id": self.client_id, "scope": ",".join(scopes), "redirect_uri": redirect_uri, "state": nonce}
        )  # no grant_options[]=per-user: an offline token, for work nobody is logged in for
        return f"{self.settings.authorize_url}?{query}"

    def finish_install(self, query: Sequence[tuple[str, str]]) -> Grant:
        pairs = list(query)
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            raise InstallRejected(400, "a parameter is repeated in the callback")
        params = dict(pairs)
        for name in ("hmac", "code", "shop", "state"):
            if not params.get(name):
                raise InstallRejected(400, f"the callback has no {name!r} parameter: open the install link again")
        expected = query_hmac(self._client_secret, pairs)
        if not hmac.compare_digest(params["hmac"].lower().encode(), expected.encode()):
            raise InstallRejected(
                401, "the callback's hmac does not match: it was not sent by Shopify for this app (check client_secret)"
            )
        shop = params["shop"]
        if not SHOP_DOMAIN.match(shop):
            raise InstallRejected(400, f"shop {shop[:100]!r} is not a myshopify.com domain")
        if shop != self.settings.shop_domain:
            raise InstallRejected(403, f"this link installs on {self.settings.shop_domain}, not on {shop}")
        if not self._take_state(params["state"]):
            raise InstallRejected(
                403,
                "the install link is unknown, expired or used already: "
                f"run `{install_command(self.shop_id)}` again and follow the new link",
            )
        form = {"client_id": self.client_id, "client_secret": self._client_secret, "code": params["code"]}
        if self.settings.expiring_tokens:
            form["expiring"] = "1"
        try:
            with self._lock:
                self._known = self._keep(self._post(form, "authorization code"), None)
                return self._known
        except PlatformError as exc:
            raise InstallRejected(502, exc.message) from None

    def _take_state(self, nonce: str) -> bool:
        """True once for a nonce handed out and not expired (single use)."""
        pending = dict(self.state.get(INSTALL_STATES_KEY) or {})
        until = _moment(pending.pop(_digest(nonce), None))
        if until is None:
            return False
        self.state.set(INSTALL_STATES_KEY, pending)
        return self.now() < until


def token_source(
    shop_id: str,
    settings: ShopifySettings,
    state: ShopState,
    box: SecretBox | None,
    session: requests.Session,
    now: Callable[[], datetime],
) -> TokenSource:
    if settings.access_token is not None:
        return TokenSource(settings.access_token.get_secret_value())
    return GrantedToken(shop_id, settings, state, box, session, now)


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _after(now: datetime, seconds: Any) -> datetime | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return now + timedelta(seconds=seconds)


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
