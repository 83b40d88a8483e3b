"""The Airbyte API as Sluice uses it: the provider's hook, with retries and clear errors.

:class:`AirbyteServerHook` keeps the provider's connection handling (server URL, client
credentials, token URL, proxies, timeout) and adds what a scheduled sync needs: 5xx,
429, connection errors and a failing token endpoint are retried with exponential
backoff; a 401 (an expired or revoked token) is retried once with a new token; every
other answer becomes an :class:`AirbyteError` naming the call, the Airflow connection
and what Airbyte said. It also finds a connection's running job, so a retried task
reattaches to it instead of starting a second sync, and reads a job's attempts from
Airbyte's configuration API (the public API does not report them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.providers.airbyte.hooks.airbyte import AirbyteHook

T = TypeVar("T")

#: Job statuses that end a job; the others (pending, queued, running, incomplete) do not.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class AirbyteError(RuntimeError):
    """Airbyte refused a call, could not be reached, or a job did not succeed.

    :param status: the HTTP status Airbyte answered (None when it was not reached)
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _status_of(error: BaseException) -> int | None:
    """The HTTP status behind an SDK error; the token endpoint's errors carry it in text."""
    response = getattr(error, "raw_response", None)
    if response is not None:
        return response.status_code
    text = str(error)
    if text.startswith("Unexpected status code ") and "token endpoint" in text:
        return int(text.split()[3])
    return None


def _said(error: BaseException) -> str:
    """What Airbyte said: the problem JSON's detail or message, else the error's text."""
    response = getattr(error, "raw_response", None)
    if response is None:
        return str(error)
    try:
        body = json.loads(response.text)
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body.get("title") or body)
    return str(body)


class _Answer(Exception):
    """A raw HTTP answer that is not a success, shaped as the SDK's errors are."""

    def __init__(self, response: Any, what: str = "") -> None:
        super().__init__(f"Unexpected status code {response.status_code} from {what}" if what else response.text)
        self.raw_response = response


def _raise_for(response: Any, what: str = "") -> None:
    if response.status_code >= 300:
        raise _Answer(response, what)


class AirbyteServerHook(AirbyteHook):
    """The provider's Airbyte hook with retries, reattachment and clear errors.

    :param airbyte_conn_id: the Airflow connection of the Airbyte API (server URL as host,
        client id and secret as login and password); its extras ``retries`` (attempts per
        call, default 6) and ``retry_seconds`` (first backoff, default 1, doubling up to 30)
        tune the retries
    """

    def __init__(self, airbyte_conn_id: str = "airbyte_default", **kwargs: Any) -> None:
        super().__init__(airbyte_conn_id=airbyte_conn_id, **kwargs)
        extra = self.get_connection(airbyte_conn_id).extra_dejson
        self.attempts = max(1, int(extra.get("retries", 6)))
        self.retry_seconds = float(extra.get("retry_seconds", 1))

    def call(self, what: str, request: Callable[[], T]) -> T:
        """Run one API request, retried as the module says; ``what`` names it in errors."""
        from httpx import TransportError

        delay, refreshed = self.retry_seconds, False
        for attempt in range(1, self.attempts + 1):
            try:
                return request()
            except Exception as error:
                status = _status_of(error)
                transient = isinstance(error, TransportError) or status in RETRIED_STATUSES
                if status == 401 and not refreshed and "token endpoint" not in str(error):
                    refreshed = True  # the SDK dropped the rejected token: ask for a new one
                    self.log.info("Airbyte refused the token for %s; retrying with a new one", what)
                    continue
                if status is None and not transient:
                    raise  # not an answer of Airbyte's: a fault of the caller
                if not transient or attempt == self.attempts:
                    raise self._error(what, error, status, attempt) from error
                self.log.warning("%s: Airbyte answered %s (%s); retrying in %.1f s", what, status, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _error(self, what: str, error: BaseException, status: int | None, attempts: int) -> AirbyteError:
        where = f"Airbyte at {self.conn['host']} (Airflow connection {self.airbyte_conn_id!r})"
        if status is None and not hasattr(error, "raw_response"):
            return AirbyteError(f"{what}: {where} could not be reached after {attempts} attempt(s): {error}")
        if status == 401 or (status is not None and "token endpoint" in str(error)):
            return AirbyteError(
                f"{what}: {where} refused the client credentials (HTTP {status}): check the connection's"
                f" client id and secret, and its token URL {self.conn['token_url']!r}",
                status,
            )
        tries = f" after {attempts} attempts" if status in RETRIED_STATUSES else ""
        return AirbyteError(f"{what}: {where} answered HTTP {status}{tries}: {_said(error)}", status)

    # --- the calls Sluice makes ---------------------------------------------------------

    def _json(self, what: str, request: Callable[[], Any]) -> dict[str, Any]:
        """A call's JSON body as Airbyte sent it: the SDK's models drop keys they do not
        know and refuse configurations newer than they are; Sluice reads the JSON itself."""
        from airbyte_api.errors import ResponseValidationError

        def raw() -> Any:
            try:
                return request().raw_response
            except ResponseValidationError as error:
                if error.raw_response.status_code >= 300:
                    raise
                return error.raw_response

        return self.call(what, raw).json()

    def get_connection_info(self, connection_id: str) -> dict[str, Any]:
        from airbyte_api.api import GetConnectionRequest

        return self._json(
            f"reading Airbyte connection {connection_id}",
            lambda: self.airbyte_api.connections.get_connection(
                request=GetConnectionRequest(connection_id=connection_id)
            ),
        )

    def get_destination_info(self, destination_id: str) -> dict[str, Any]:
        from airbyte_api.api import GetDestinationRequest

        return self._json(
            f"reading Airbyte destination {destination_id}",
            lambda: self.airbyte_api.destinations.get_destination(
                request=GetDestinationRequest(destination_id=destination_id)
            ),
        )

    def get_job(self, job_id: int) -> dict[str, Any]:
        from airbyte_api.api import GetJobRequest

        return self._json(
            f"reading Airbyte job {job_id}",
            lambda: self.airbyte_api.jobs.get_job(request=GetJobRequest(job_id=int(job_id))),
        )

    def config_api_url(self) -> str:
        """The configuration API's base: the connection's extra ``config_api_url``, else
        derived from the public API's (``…/api/public/v1`` → ``…/api/v1``; a server at
        ``<origin>/v1`` → ``<origin>/api/v1``)."""
        from urllib.parse import urlsplit

        extra = self.get_connection(self.airbyte_conn_id).extra_dejson
        if extra.get("config_api_url"):
            return str(extra["config_api_url"]).rstrip("/")
        host = str(self.conn["host"]).rstrip("/")
        if host.endswith("/api/public/v1"):
            return host.removesuffix("/api/public/v1") + "/api/v1"
        parts = urlsplit(host)
        return f"{parts.scheme}://{parts.netloc}/api/v1"

    def job_attempts(self, job_id: int) -> list[dict[str, Any]] | None:
        """The job's attempts, oldest first, as the configuration API's ``jobs/get`` reports
        them (id, status, createdAt and endedAt in epoch seconds, totalStats); None when
        that API is not served there (Airbyte Cloud serves only the public API)."""
        from urllib.parse import urljoin

        client = self.airbyte_api.sdk_configuration.client  # the SDK's: proxies and timeout

        def request() -> Any:
            headers = {}
            if self.conn["client_id"] and self.conn["client_secret"]:
                answer = client.post(
                    urljoin(self.conn["host"], self.conn["token_url"]),  # as the SDK joins them
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.conn["client_id"],
                        "client_secret": self.conn["client_secret"],
                    },
                )
                _raise_for(answer, "token endpoint")
                headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            answer = client.post(f"{self.config_api_url()}/jobs/get", json={"id": int(job_id)}, headers=headers)
            _raise_for(answer)
            return answer.json()

        try:
            body = self.call(f"reading the attempts of Airbyte job {job_id}", request)
        except AirbyteError as error:
            if error.status in (404, 405):
                return None
            raise
        return sorted((a.get("attempt") or {} for a in body.get("attempts") or []), key=lambda a: a.get("id", 0))

    def running_job(self, connection_id: str) -> dict[str, Any] | None:
        """The connection's sync job that has not ended yet, if any (the newest)."""
        from airbyte_api.api import ListJobsRequest
        from airbyte_api.models import JobTypeEnum

        body = self._json(
            f"listing the jobs of Airbyte connection {connection_id}",
            lambda: self.airbyte_api.jobs.list_jobs(
                request=ListJobsRequest(
                    connection_id=connection_id, job_type=JobTypeEnum.SYNC, order_by="createdAt|DESC"
                )
            ),
        )
        running = [job for job in body.get("data", []) if job.get("status") not in TERMINAL_STATUSES]
        return max(running, key=lambda job: job["jobId"]) if running else None

    def start_sync(self, connection_id: str) -> tuple[dict[str, Any], bool]:
        """The connection's running sync job, or a new one: (job, whether it was started now).

        Airbyte answers 409 to a sync of a connection that already runs one (started by
        its own schedule, or by a request whose answer was lost): then the running job is
        the one to wait for.
        """
        from airbyte_api.models import JobCreateRequest, JobTypeEnum

        running = self.running_job(connection_id)
        if running is not None:
            return running, False
        try:
            job = self._json(
                f"starting a sync of Airbyte connection {connection_id}",
                lambda: self.airbyte_api.jobs.create_job(
                    request=JobCreateRequest(connection_id=connection_id, job_type=JobTypeEnum.SYNC)
                ),
            )
            return job, True
        except AirbyteError as error:
            running = self.running_job(connection_id) if error.status == 409 else None
            if running is None:
                raise
            return running, False

    def cancel(self, job_id: int) -> dict[str, Any] | None:
        """Cancel a job (``DELETE /jobs/{id}``); None when it had already ended."""
        from airbyte_api.api import CancelJobRequest

        try:
            return self._json(
                f"cancelling Airbyte job {job_id}",
                lambda: self.airbyte_api.jobs.cancel_job(request=CancelJobRequest(job_id=int(job_id))),
            )
        except AirbyteError as error:
            if error.status == 409:  # it ended in the meantime
                return None
            raise
