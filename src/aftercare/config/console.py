"""``[console]``: whether the console is served, and how its sessions and logins are protected.

Here, beside the config that validates it, rather than in :mod:`aftercare.console`, which sits above the app.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ConsoleSettings(BaseModel):
    """The console's section of the config (``docs/console.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Serve the pages under ``/console``. Off by default: a deployment opts in.
    enabled: bool = False
    #: Signs session cookies. Unset: a random key per process, so sessions end on restart.
    secret_key: SecretStr | None = None
    #: Mark cookies ``Secure``; unset means "when public_url is https".
    secure_cookies: bool | None = None
    #: A signed-in session lasts this long.
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    #: Logins allowed per user name within ``login_name_lock_minutes``, and four times as many per
    #: client address within ``login_window_minutes``; counted before the password is checked (a
    #: login that succeeds gives its address attempt back).
    login_attempts: int = Field(default=5, ge=1)
    #: Short, so a stranger guessing a name locks its owner out only briefly.
    login_name_lock_minutes: float = Field(default=1, gt=0)
    login_window_minutes: float = Field(default=15, gt=0)
