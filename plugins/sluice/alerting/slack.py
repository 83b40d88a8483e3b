"""Deliver an alert message through the Slack provider's notifiers, never failing, never slow.

The Airflow connection ``SLUICE_SLACK_CONN_ID`` (default ``slack_alerts``) chooses how:

- type ``slackwebhook``: an Incoming Webhook (``SlackWebhookNotifier``); the password
  holds the webhook URL, or the part after ``/services/`` with the host
  ``hooks.slack.com/services``. A routed channel is put in the payload (legacy webhooks
  honour it; a Slack app's webhook always posts to its own channel);
- type ``slack``: an API token (``SlackNotifier``, ``chat.postMessage`` to the routed channel);
- no connection: the message goes to the task log only.

Every call is bounded by ``SLUICE_SLACK_TIMEOUT_SECONDS`` and sent once (Slack's client
would otherwise try a failed connection again); whatever goes wrong is logged and
returned as the delivery's error, never raised.

Imported only when an alert is sent (the callbacks import it lazily), so the provider
stays out of DAG parsing.
"""

from __future__ import annotations

import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

from sluice.alerting import settings
from sluice.alerting.incidents import FAILED, LOGGED, SENT
from sluice.alerting.messages import Message
from sluice.alerting.routing import Route
from sluice.core import config

log = logging.getLogger(__name__)
#: What a call may take beyond the HTTP timeout (building the client, reading the connection).
GRACE_SECONDS = 1.0


class SlackConfigError(ValueError):
    """The Slack connection cannot be used as it is configured."""


@dataclass(frozen=True)
class Delivery:
    """How a message went: ``sent``, ``logged`` (no Slack connection) or ``failed``, with why."""

    status: str
    error: str | None = None


def deliver(message: Message, route: Route, *, conn_id: str | None = None, timeout: float | None = None) -> Delivery:
    """Send ``message`` to ``route`` through the Slack connection ``conn_id``."""
    conn_id = conn_id or config.slack_conn_id()
    timeout = timeout or settings.timeout_seconds()
    try:
        connection = _connection(conn_id)
        if connection is None:
            log.warning("No Slack connection %r: the alert is only written here.\n%s", conn_id, message.text)
            return Delivery(LOGGED)
        notifier = _notifier(connection, conn_id, message, route, timeout)
    except SlackConfigError as exc:
        log.error("Alert not sent: %s\n%s", exc, message.text)
        return Delivery(FAILED, str(exc))
    except Exception as exc:  # a secrets backend or provider error: the alert must still be logged
        log.exception("Alert not sent: Slack connection %r could not be read.\n%s", conn_id, message.text)
        return Delivery(FAILED, f"Slack connection {conn_id!r} could not be read: {exc}")
    error = _call_within(notifier.notify, timeout + GRACE_SECONDS)
    if error is None:
        return Delivery(SENT)
    reason = f"Slack connection {conn_id!r}: {error}"
    log.error("Alert not sent: %s\n%s", reason, message.text)
    return Delivery(FAILED, reason)


def _connection(conn_id: str) -> Any | None:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _notifier(connection: Any, conn_id: str, message: Message, route: Route, timeout: float) -> Any:
    """The provider's notifier for ``connection``, its address checked."""
    # one try, no link previews: a retry or an unfurl could hold the task past the timeout
    sending = {
        "text": message.text,
        "blocks": message.blocks,
        "channel": route.channel,
        "timeout": timeout,
        "retry_handlers": [],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if connection.conn_type == "slackwebhook":
        notifier = RoutedWebhookNotifier(slack_webhook_conn_id=conn_id, **sending)
        # builds the client (reading the connection) here, not in the sending thread
        _check_webhook(connection, conn_id, lambda: notifier.hook.client.url)
        return notifier
    if connection.conn_type == "slack":
        from airflow.providers.slack.notifications.slack import SlackNotifier

        if not route.channel:
            raise SlackConfigError(
                f"Slack connection {conn_id!r} is an API token, which needs a channel: "
                "set SLUICE_SLACK_CHANNEL or meta.channel of the source or model"
            )
        if not (connection.password or "").strip():
            raise SlackConfigError(f"Slack connection {conn_id!r} has no API token in its password")
        notifier = SlackNotifier(slack_conn_id=conn_id, **sending)
        notifier.hook.client  # noqa: B018 (the connection is read here, not in the sending thread)
        return notifier
    raise SlackConfigError(
        f"Slack connection {conn_id!r} has type {connection.conn_type!r}: expected "
        "'slackwebhook' (Incoming Webhook) or 'slack' (API token)"
    )


def _check_webhook(connection: Any, conn_id: str, url_of: Any) -> None:
    """Refuse a webhook address the provider would misuse, naming what is wrong (not the secret)."""
    secret = (connection.password or "").strip()
    hint = (
        "put the whole webhook URL (https://hooks.slack.com/services/T…/B…/…) in the connection's "
        "password, or the part after /services/"
    )
    if not secret:
        raise SlackConfigError(f"Slack connection {conn_id!r} has no webhook URL in its password: {hint}")
    if "://" not in secret and (":" in secret or any(c.isspace() for c in secret)):
        # the provider would append it to hooks.slack.com/services/ as if it were a token
        raise SlackConfigError(f"Slack connection {conn_id!r} has a malformed webhook URL (no '://'): {hint}")
    url = url_of()
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "it is not an http(s) URL"
    elif not parts.hostname:
        problem = "it names no host"
    elif any(c.isspace() for c in url):
        problem = "it contains spaces"
    else:
        try:
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            problem = "its port is not a number"
    if problem:
        raise SlackConfigError(f"Slack connection {conn_id!r} has a malformed webhook URL ({shown}): {problem}; {hint}")


def _call_within(send: Any, seconds: float) -> str | None:
    """Run ``send({})`` for at most ``seconds``; the error (None when it went through).

    The HTTP timeout bounds each socket operation, not the call: a server that answers a
    byte at a time would hold it longer. The thread is left behind, as a daemon, in that case.
    """
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            send({})
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="sluice-slack-alert", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return f"Slack did not answer within {seconds - GRACE_SECONDS:g} s"
    error = outcome.get("error")
    if error is None:
        return None
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return f"Slack did not answer within {seconds - GRACE_SECONDS:g} s ({error})"
    refused = _web_api_refusal(error)
    if refused:
        return refused
    return f"{type(error).__name__}: {error}"


def _web_api_refusal(error: BaseException) -> str | None:
    """Slack's reason, in one line, when the Web API answered ``{"ok": false, "error": ...}``
    (with HTTP 200, as it does for a refused message); None for any other error."""
    from slack_sdk.errors import SlackApiError

    if not isinstance(error, SlackApiError) or error.response.get("ok", True):
        return None
    return f"Slack refused the message: {error.response.get('error')} (HTTP {error.response.status_code}, ok: false)"


class RoutedWebhookNotifier(SlackWebhookNotifier):
    """``SlackWebhookNotifier`` that names the routed channel in the payload.

    :param channel: the channel to post to (legacy webhooks honour it); None leaves it out
    """

    def __init__(self, *, channel: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.channel = channel

    def notify(self, context: Any) -> None:
        legacy = {"channel": self.channel} if self.channel else {}
        with warnings.catch_warnings():
            # the hook warns that a Slack app's webhook ignores the channel: known, documented
            warnings.simplefilter("ignore", UserWarning)
            self.hook.send(
                text=self.text,
                blocks=self.blocks,
                unfurl_links=self.unfurl_links,
                unfurl_media=self.unfurl_media,
                **legacy,
            )
