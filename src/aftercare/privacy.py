"""Customers' data on request: erase one customer, export what is kept about them, and do what
the platforms' privacy requests (Shopify's compliance webhooks) ask for (issue #19, docs/privacy.md).

The store finds and changes the rows (:meth:`Store.forget_customer`,
:meth:`Store.customer_records`); this module adds what is not rows: the key,
the mail outbox folder's ``.eml`` files, the export files, and the worker's
handling of stored requests. The command line (``aftercare customers``) is a
thin layer over :func:`forget` and :func:`export`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from aftercare.app import App
from aftercare.models import normalise_email
from aftercare.store import (
    RETENTION_BATCH,
    RETENTION_BATCHES,
    ErasureReport,
    StoredPrivacyRequest,
)

log = logging.getLogger("aftercare.privacy")


class PrivacyError(Exception):
    """A request that cannot be done as asked (no key, an unknown shop, no email); one line."""


@dataclass(frozen=True)
class Erasure:
    """What :func:`forget` changed: the store's rows, and the outbox files it deleted."""

    rows: ErasureReport
    files_deleted: int

    @property
    def found(self) -> bool:
        return self.rows.found or self.files_deleted > 0

    def counts(self) -> dict[str, int]:
        names = [name for name in ErasureReport.__slots__ if name != "outbox_files"]
        return {**{name: getattr(self.rows, name) for name in names}, "outbox_files": self.files_deleted}


def forget(app: App, email: str, shop_id: str | None = None) -> Erasure:
    """Erase one customer of one shop (or of every shop): their rows in the store, and every
    ``.eml`` file in the shops' outbox folders addressed to them."""
    email = _valid_email(email)
    shops = _shops(app, shop_id)
    key = app.store.erasure_key
    if key is None:
        raise PrivacyError(
            "secret_key: erasure needs the top-level secret_key (the erased customer is remembered by a hash"
            ' under a key derived from it); add secret_key = "${AFTERCARE_SECRET_KEY}" (aftercare init writes one)'
        )
    rows = app.store.forget_customer(shop_id, email, key)
    deleted = _delete_outbox_files(app, shops, email, rows.outbox_files)
    log.info("customer erased shop=%s %s", shop_id or "*", _summary(rows, deleted))
    return Erasure(rows, deleted)


def export(app: App, email: str, shop_id: str | None = None) -> dict[str, Any]:
    """Every record aftercare keeps about one customer, by table, as plain data."""
    email = _valid_email(email)
    _shops(app, shop_id)
    return {
        "email": email,
        "shop": shop_id or "*",
        "exported_at": app.now().isoformat(),
        "records": app.store.customer_records(shop_id, email),
    }


def render_text(exported: dict[str, Any]) -> str:
    """The export as text a person reads: one section per kind of record."""
    records: dict[str, list[dict[str, Any]]] = exported["records"]
    total = sum(len(rows) for rows in records.values())
    lines = [f"Records about {exported['email']} (shop {exported['shop']}), {exported['exported_at']}: {total}"]
    for name, rows in records.items():
        lines.append("")
        lines.append(f"{name.replace('_', ' ')} ({len(rows)})")
        for row in rows:
            summary = ", ".join(f"{k}={_brief(v)}" for k, v in row.items() if k not in ("event", "payload", "body"))
            lines.append(f"  - {summary}")
            for bulky in ("event", "payload", "body"):
                if row.get(bulky):
                    text = row[bulky] if isinstance(row[bulky], str) else json.dumps(row[bulky], ensure_ascii=False)
                    lines.append(f"    {bulky}: {text}")
    return "\n".join(lines) + "\n"


# -- the platforms' requests, done by the worker --------------------------------


def run_privacy_requests(app: App, limit: int = 20) -> int:
    """Do the stored privacy requests (the worker's sweep calls this); return how many ended."""
    done = 0
    for stored in app.store.claim_privacy_requests(limit):
        try:
            outcome = _do(app, stored)
            state = "done"
        except PrivacyError as exc:
            outcome, state = str(exc), "failed"
        except Exception:  # the store is away, a bug: tried again once its claim runs out
            log.exception("privacy request %s shop=%s (%s) failed; tried again later", stored.id, stored.shop_id,
                          stored.request.kind)  # fmt: skip
            continue
        app.store.finish_privacy_request(stored.id, state, outcome)
        log.info("privacy request %s shop=%s %s %s: %s", stored.id, stored.shop_id, stored.request.kind, state,
                 outcome)  # fmt: skip
        done += 1
    return done


def _do(app: App, stored: StoredPrivacyRequest) -> str:
    request, shop_id = stored.request, stored.shop_id
    if request.kind == "shop_redact":
        counts = app.store.forget_shop(shop_id)
        files = _delete_outbox_files(app, [shop_id], "", counts.pop("outbox_files", ()))
        return _counts_text({**counts, "outbox_files": files}) or "nothing kept for the shop"
    emails = _request_emails(app, stored)
    if not emails:
        return "no record of this customer"
    if request.kind == "customer_redact":
        erasures = [forget(app, email, shop_id) for email in emails]
        counts: Counter[str] = Counter()
        for erasure in erasures:
            counts.update(erasure.counts())
        return _counts_text(dict(counts)) if any(e.found for e in erasures) else "no record of this customer"
    if request.kind == "customer_data_request":
        exported = export(app, emails[0], shop_id)
        for email in emails[1:]:  # the same customer under another email: one file with all of it
            for name, rows in export(app, email, shop_id)["records"].items():
                exported["records"].setdefault(name, []).extend(rows)
        exported["emails"] = emails
        path = write_export(app, shop_id, stored, exported)
        return f"export written to {path}"
    raise PrivacyError(f"unknown privacy request kind {request.kind!r}")


def _request_emails(app: App, stored: StoredPrivacyRequest) -> list[str]:
    """The customer's emails: the one the request names, and those of the stored orders whose
    customer has the request's customer id or that the request lists (Shopify may send a redact
    without an email, or with one the orders no longer carry; WooCommerce's customer.deleted
    sends the id alone)."""
    request = stored.request
    named = [_valid_email(request.email)] if request.email else []
    found = app.store.customer_emails(stored.shop_id, customer_id=request.customer_id, order_ids=request.order_ids)
    return list(dict.fromkeys(named + found))


def write_export(app: App, shop_id: str, stored: StoredPrivacyRequest, exported: dict[str, Any]) -> Path:
    """The export as a JSON file under ``[privacy] export_folder`` (readable by its owner only)."""
    folder = app.config.resolve_path(app.config.privacy.export_folder)
    folder.mkdir(parents=True, exist_ok=True)
    reference = "".join(c for c in (stored.request.reference or str(stored.id)) if c.isalnum() or c in "-_")
    path = folder / f"{app.now():%Y%m%dT%H%M%SZ}-{shop_id}-data-request-{reference}.json"
    exported = {**exported, "platform_request": stored.request.reference, "orders": list(stored.request.order_ids)}
    fd, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(exported, out, ensure_ascii=False, indent=2, default=str)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# -- retention ------------------------------------------------------------------

#: How often the sweep deletes by age (every worker shares the time of the last run, in ``cursors``).
RETENTION_EVERY = timedelta(hours=1)
_RETENTION_CURSOR = "retention"


def apply_retention(app: App, *, force: bool = False) -> dict[str, dict[str, int]]:
    """Delete what is older than each shop's ``retention_days`` (the worker's sweep calls this; it
    does the work at most every RETENTION_EVERY unless ``force``); return the counts per shop.
    A shop with more to delete than one run's batches is done further at the next sweep."""
    now = app.now()
    last = app.store.get_cursor("", _RETENTION_CURSOR)
    if not force and last and now - datetime.fromisoformat(last) < RETENTION_EVERY:
        return {}
    deleted: dict[str, dict[str, int]] = {}
    more_left = False
    for shop_id, shop in app.shops.items():
        days = shop.config.retention_days if shop.config.retention_days is not None else app.config.retention_days
        if days == 0:
            continue
        counts = app.store.delete_older_than(shop_id, now - timedelta(days=days))
        more_left = more_left or any(n >= RETENTION_BATCH * RETENTION_BATCHES for n in counts.values())
        if any(counts.values()):
            deleted[shop_id] = counts
            log.info("retention shop=%s older than %d days: %s", shop_id, days, _counts_text(counts))
    if not more_left:
        app.store.set_cursor("", now.isoformat(), name=_RETENTION_CURSOR)
    return deleted


# -- helpers --------------------------------------------------------------------


def _valid_email(email: str) -> str:
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise PrivacyError(f"EMAIL: {email!r} is not an email address")
    return email


def _shops(app: App, shop_id: str | None) -> list[str]:
    if shop_id is None:
        return list(app.shops)
    if shop_id not in app.shops:
        raise PrivacyError(f"--shop: no shop {shop_id!r} in the config (shops: {', '.join(app.shops) or 'none'})")
    return [shop_id]


def _delete_outbox_files(app: App, shop_ids: Iterable[str], email: str, named: Iterable[str]) -> int:
    """Delete the .eml files the actions named, and any other in the shops' outbox folders addressed
    to ``email`` (all of the shop's when ``email`` is empty: shop/redact); return how many."""
    deleted = 0
    for path in dict.fromkeys(named):
        file = Path(path)
        if file.suffix == ".eml" and file.is_file():
            file.unlink()
            deleted += 1
    folders = {app.config.resolve_path(app.mail_settings(shop_id).outbox_dir): shop_id for shop_id in shop_ids}
    for folder, shop_id in folders.items():
        if not folder.is_dir():
            continue
        for file in folder.glob("*.eml"):
            if _addressed_to(file, email) if email else f"-{shop_id}-" in file.name:
                file.unlink(missing_ok=True)
                deleted += 1
    return deleted


def _addressed_to(file: Path, email: str) -> bool:
    try:
        data = file.read_bytes()
    except OSError:
        return False
    headers = BytesHeaderParser().parsebytes(data)
    fields = [value for name in ("To", "Cc", "Bcc") for value in headers.get_all(name, [])]
    if any(normalise_email(address) == email for _name, address in getaddresses(fields)):
        return True
    return email.encode("utf-8") in data.lower()


def _counts_text(counts: dict[str, Any]) -> str:
    return " ".join(f"{name}={n}" for name, n in counts.items() if n)


def _summary(rows: ErasureReport, files: int) -> str:
    return _counts_text(Erasure(rows, files).counts()) or "nothing found"


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
