"""Notifications (agave.md §6.6): a subscription, its retry policy and its delivery attempts.

The server of 2.1+ answers ``id``; the older schema agavepy's spec describes has ``uuid``
(and ``success``, ``attempts``, ``lastSent``, ``responseCode``): both are read, and
:attr:`Notification.uuid` is whichever was sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ...core.serde import rename
from .common import AgaveModel, converter

__all__ = ["Notification", "NotificationAttempt", "NotificationPolicy"]


@attrs.define
class NotificationPolicy(AgaveModel):
    """How a failed delivery is retried: ``retry_strategy`` ``NONE``, ``IMMEDIATE``,
    ``DELAYED`` (every ``retry_rate`` seconds) or ``EXPONENTIAL``, at most ``retry_limit``
    times, after ``retry_delay`` seconds."""

    retry_strategy: str = "DELAYED"
    retry_limit: int = 5
    retry_rate: int = 5
    retry_delay: int = 0
    save_on_failure: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "retryStrategy": self.retry_strategy,
            "retryLimit": self.retry_limit,
            "retryRate": self.retry_rate,
            "retryDelay": self.retry_delay,
            "saveOnFailure": self.save_on_failure,
        }


@attrs.define
class Notification(AgaveModel):
    """A subscription: POST the event to ``url`` when ``event`` (``*`` for any) happens
    to the object ``associated_uuid``. ``attempts``, ``last_sent``, ``response_code`` and
    ``success`` describe its latest delivery."""

    id: str = ""
    owner: str = ""
    url: str = ""
    associated_uuid: str = ""
    event: str = ""
    persistent: bool = False
    status: str | None = None
    policy: NotificationPolicy | None = None
    attempts: int = 0
    last_sent: dt.datetime | None = None
    response_code: int | None = None
    success: bool | None = None
    created: dt.datetime | None = None
    last_updated: dt.datetime | None = None

    @property
    def uuid(self) -> str:
        """The notification's id (``uuid`` in the older schema)."""
        return self.id or str(self.raw.get("uuid") or "")


@attrs.define
class NotificationAttempt(AgaveModel):
    """One delivery attempt: when, to which URL, and what the receiver answered."""

    id: str = ""
    url: str = ""
    event: str = ""
    associated_uuid: str = ""
    attempt_number: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    success: bool = False
    response: dict[str, Any] = attrs.field(factory=dict)

    @property
    def response_code(self) -> int | None:
        code = self.response.get("code")
        return code if isinstance(code, int) and not isinstance(code, bool) else None


def _with_uuid(data: Any) -> Any:
    if isinstance(data, dict) and not data.get("id") and data.get("uuid"):
        return {**data, "id": data["uuid"]}
    return data


rename(
    converter,
    NotificationPolicy,
    retry_strategy="retryStrategy",
    retry_limit="retryLimit",
    retry_rate="retryRate",
    retry_delay="retryDelay",
    save_on_failure="saveOnFailure",
)
rename(
    converter,
    Notification,
    associated_uuid="associatedUuid",
    last_sent="lastSent",
    response_code="responseCode",
    last_updated="lastUpdated",
)
_notification_hook = converter.get_structure_hook(Notification)
converter.register_structure_hook(Notification, lambda data, cls: _notification_hook(_with_uuid(data), cls))
rename(
    converter,
    NotificationAttempt,
    associated_uuid="associatedUuid",
    attempt_number="attemptNumber",
    start_time="startTime",
    end_time="endTime",
)
