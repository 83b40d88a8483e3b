"""The Airflow operator of GDPR erasure."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator


class GdprEraseOperator(BaseOperator):
    """Carry every pending erasure request as far as it can go (:mod:`sluice.erasure.run`).

    Requests come from the run's conf (``{"requests": [{"email": "..."}, ...]}``) and from
    the lake's requests table. Each request is resolved, erased from the warehouse and the
    lake, purged once the retention has passed, verified, and closed; a request that
    names nobody the platform holds is rejected (audited, closed) and fails the task once
    the others are done. What the task returns and logs names requests by id, never by
    identifier.
    """

    ui_color = "#f5c9c9"

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from sluice.core import config
        from sluice.core.sources import load_source, source_names
        from sluice.erasure import audit
        from sluice.erasure.requests import close_request, parse_requests, pending_requests, record_requests
        from sluice.erasure.resolve import RequestError, declared_types
        from sluice.erasure.run import process_request, request_hash
        from sluice.lake.storage import open_lake
        from sluice.warehouse.target import current, warehouse_connection

        lake, salt = open_lake(), config.erasure_salt()
        dag_run = context.get("dag_run")
        sources = [load_source(name) for name in source_names()]
        try:
            new = parse_requests(getattr(dag_run, "conf", None), declared_types(sources))
        except RequestError as error:  # nothing was recorded; a retry would fail the same way
            raise AirflowFailException(f"malformed erasure request: {error}") from error
        added = record_requests(lake, new)
        self.log.info("%d new erasure request(s) recorded", added)
        compact = current().compact
        results, rejected = [], []
        for request in pending_requests(lake):
            try:
                result = process_request(lake, request, salt, warehouse_connection, compact)
            except RequestError as error:
                audit.append(lake, request.request_id, request_hash(request, salt), "rejected", {"reason": str(error)})
                close_request(lake, request.request_id)
                rejected.append(f"{request.request_id}: {error}")
                continue
            self.log.info("erasure request %s: %s", request.request_id, result["state"])
            results.append({"request_id": request.request_id, "state": result["state"]})
        if rejected:  # final: a retry would find them closed
            raise AirflowFailException("rejected erasure request(s), closed without change:\n" + "\n".join(rejected))
        return results
