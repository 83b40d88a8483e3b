"""The lake's storage: a local folder or an S3 prefix, behind one interface.

``SLUICE_LAKE_ROOT`` chooses it: a folder path (the embedded default) or
``s3://bucket/prefix``. Files are read and written through pyarrow's filesystems, byte for
byte (pyarrow would otherwise gzip or gunzip a stream whose name ends ``.gz``), and Delta
tables get the matching deltalake storage options, so nothing else in Sluice asks which
one it has.

S3 has no rename. Each object appears whole when its upload completes, which is what the
lake's guarantees rest on: a file written under a name no reader looks up yet, a manifest
written last in one PUT, a Delta commit as a conditional PUT (``conditional_put=etag``)
so concurrent writers of one table never overwrite each other's log entry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

#: Delta's default ``delta.deletedFileRetentionDuration``: a vacuum may not delete files sooner.
REPLACED_FILES_KEPT_HOURS = 168

log = logging.getLogger(__name__)


class LakeConfigError(ValueError):
    """``SLUICE_LAKE_ROOT`` names no lake Sluice can use."""


class LakeAccessError(RuntimeError):
    """The lake's bucket is missing, refuses the credentials or cannot be reached."""


@dataclass(frozen=True)
class Lake:
    """Where the lake lives.

    :param fs: the pyarrow filesystem holding it
    :param root: the lake's root on ``fs`` (an absolute folder, or ``bucket/prefix``)
    :param scheme: ``file`` or ``s3``
    :param storage_options: what deltalake needs to reach ``fs`` (credentials, endpoint)
    """

    fs: Any
    root: str
    scheme: str = "file"
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def path(self, *parts: str) -> str:
        """The path on ``fs`` of ``parts`` below the root."""
        return posixpath.join(self.root, *parts)

    def uri(self, path: str) -> str:
        """``path`` (on ``fs``) as deltalake names it: a local path or ``s3://bucket/key``."""
        return path if self.scheme == "file" else f"{self.scheme}://{path}"

    def relative(self, path: str) -> str:
        """``path`` (on ``fs``) relative to the root."""
        return posixpath.relpath(path, self.root)

    def delta_table(self, path: str) -> Any | None:
        """The Delta table at ``path`` (on ``fs``), or None when there is none yet."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:  # one log listing; is_deltatable and then opening would list twice
            return DeltaTable(self.uri(path), storage_options=dict(self.storage_options))
        except TableNotFoundError:
            return None

    def append_to_table(self, path: str, rows: Any) -> Any:
        """Append ``rows`` (Arrow) to the Delta table at ``path`` in one commit (created if need be).

        :returns: the table at the version this append committed (the newest one, when the
            append created the table)
        """
        from deltalake import write_deltalake

        table = self.delta_table(path)
        if table is None:
            write_deltalake(self.uri(path), rows, mode="append", storage_options=dict(self.storage_options))
            return self.delta_table(path)
        write_deltalake(table, rows, mode="append")  # the write moves ``table`` to its commit
        return table

    def exists(self, path: str) -> bool:
        from pyarrow.fs import FileType

        return self.fs.get_file_info(path).type != FileType.NotFound

    def size(self, path: str) -> int:
        """Bytes of the file at ``path``; FileNotFoundError when there is none."""
        from pyarrow.fs import FileType

        info = self.fs.get_file_info(path)
        if info.type != FileType.File:
            raise FileNotFoundError(f"no file {self.uri(path)}")
        return info.size

    def read_bytes(self, path: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""
        try:
            with self.fs.open_input_stream(path, compression=None) as stream:
                return stream.read()
        except OSError as exc:
            # S3 reports a missing key as a bare OSError: look only once the read failed
            if not isinstance(exc, FileNotFoundError) and self.exists(path):
                raise
        raise FileNotFoundError(f"no file {self.uri(path)}")

    def read_json(self, path: str) -> Any | None:
        """The JSON document at ``path``, or None when there is none."""
        try:
            return json.loads(self.read_bytes(path))
        except FileNotFoundError:
            return None

    def open_output_stream(self, path: str) -> Any:
        """A stream writing ``path``; on S3 the object appears once the stream is closed."""
        if self.scheme == "file":
            os.makedirs(posixpath.dirname(path), exist_ok=True)
        return self.fs.open_output_stream(path, compression=None)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``path`` whole or not at all: readers see the old object or the new one."""
        if self.scheme == "file":
            write_atomically(Path(path), lambda temporary: temporary.write_bytes(data))
            return
        with self.fs.open_output_stream(path, compression=None) as stream:  # one PUT, visible once complete
            stream.write(data)

    def remove_stale_temporaries(self, path: str) -> None:
        """Delete what a killed :meth:`write_bytes` of ``path`` left (only a folder has any)."""
        if self.scheme == "file":
            remove_stale_temporaries(Path(path))

    def list_files(self, folder: str) -> list[str]:
        """Paths of the files directly in ``folder``; empty when it does not exist."""
        from pyarrow.fs import FileSelector, FileType

        selector = FileSelector(folder, allow_not_found=True, recursive=False)
        return sorted(info.path for info in self.fs.get_file_info(selector) if info.type == FileType.File)

    def delete_files(self, paths: Iterable[str]) -> None:
        """Delete the files; one already gone is not an error (a retry may repeat a delete).

        A folder left empty goes too, as on S3, where a folder is only a key prefix.
        """
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(path)
            if self.scheme == "file":
                with contextlib.suppress(OSError):  # not empty
                    os.rmdir(posixpath.dirname(path))


def maintain_table(table: Any, every: int, retention_hours: float = REPLACED_FILES_KEPT_HOURS) -> bool:
    """Compact a Delta table's small files and delete the files it replaced long ago, when
    its version is a multiple of ``every``.

    Call it after each commit to a table that grows by small commits, with the table at the
    version committed: each version has one writer, so one writer maintains. Failing to (a
    conflicting writer, the storage) is logged, never raised: the next maintenance catches up.

    :param table: the Delta table, at the version its caller just committed
    :param every: maintain once every this many versions
    :param retention_hours: keep replaced files this long, for readers of older versions (not
        less than the table's ``delta.deletedFileRetentionDuration``, which the vacuum enforces)
    :returns: whether it maintained the table
    """
    if every < 1:
        raise ValueError(f"table maintenance every {every!r} versions: expected a whole number of at least 1")
    version = table.version()
    if version == 0 or version % every:
        return False
    try:
        compacted = table.optimize.compact()
        vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False)
    except Exception:
        log.warning("maintenance of the Delta table %s skipped", table.table_uri, exc_info=True)
        return False
    log.info(
        "Delta table %s at version %d: %d small file(s) compacted into %d, %d replaced file(s) deleted",
        table.table_uri,
        version,
        compacted["numFilesRemoved"],
        compacted["numFilesAdded"],
        len(vacuumed),
    )
    return True


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a hidden temporary sibling renamed over it once complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Delete what a killed :func:`write_atomically` of ``path`` left."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def open_lake(root: str | None = None, aws_conn_id: str | None = None) -> Lake:
    """The lake at ``root`` (default ``SLUICE_LAKE_ROOT``, else the embedded folder).

    An ``s3://`` root takes its credentials and endpoint from the Airflow AWS connection
    ``aws_conn_id`` (default ``SLUICE_AWS_CONN_ID``, else ``aws_default``) when Airflow has
    it, else from the standard AWS environment variables and profiles.
    """
    from sluice.core import config

    root = root or config.lake_root()
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        from pyarrow.fs import LocalFileSystem

        return Lake(fs=LocalFileSystem(), root=os.path.abspath(parsed.path if parsed.scheme else root))
    if parsed.scheme not in ("s3", "s3a"):
        raise LakeConfigError(f"SLUICE_LAKE_ROOT={root!r}: expected a folder or s3://bucket/prefix")
    if not parsed.netloc:
        raise LakeConfigError(f"SLUICE_LAKE_ROOT={root!r}: no bucket named")
    settings = s3_settings(aws_conn_id or config.aws_conn_id())
    lake = Lake(
        fs=_s3_filesystem(settings),
        root=posixpath.join(parsed.netloc, parsed.path.strip("/")).rstrip("/"),
        scheme="s3",
        storage_options=_delta_options(settings),
    )
    _check_bucket(lake, parsed.netloc, settings)
    return lake


def _check_bucket(lake: Lake, bucket: str, settings: Mapping[str, str]) -> None:
    """Fail at once, and clearly, when the lake cannot be used (one or two HEAD requests)."""
    from pyarrow.fs import FileType

    where = f"SLUICE_LAKE_ROOT=s3://{lake.root} (endpoint {settings['endpoint'] or 'AWS'}, credentials from"
    where += f" {settings['credentials_from']})"
    try:
        if lake.fs.get_file_info(lake.root).type != FileType.NotFound:
            return
        # a new lake, or no bucket: only the bucket tells (it may refuse a policy scoped to the prefix)
        missing = lake.fs.get_file_info(bucket).type == FileType.NotFound
    except OSError as exc:
        text = str(exc)
        if "HeadBucket" in text and "ACCESS_DENIED" in text:
            return  # the prefix answered; the bucket is not this policy's to look at
        if "ACCESS_DENIED" in text or "FORBIDDEN" in text:
            reason = "the S3 server refused the credentials, or they may not read the lake's prefix"
        elif "NETWORK_CONNECTION" in text or "REQUEST_TIMEOUT" in text or "curlCode" in text:
            reason = f"the S3 endpoint could not be reached after {settings['attempts']} attempts"
        else:
            reason = "the S3 server answered with an error"
        raise LakeAccessError(f"{where}: {reason}: {text}") from exc
    if missing:
        raise LakeAccessError(
            f"{where}: bucket {bucket!r} does not exist; Sluice never creates it (README, Production)"
        )


def s3_settings(aws_conn_id: str) -> dict[str, str]:
    """Credentials, region and endpoint for S3: the Airflow connection's, else the environment's."""
    from sluice.core import config
    from sluice.core.compat import get_connection

    # a request that fails for the network or a 5xx is tried again with backoff
    settings = {**config.aws_environment(), "credentials_from": "the environment", **config.s3_client()}
    connection = get_connection(aws_conn_id)
    if connection is not None:
        settings["credentials_from"] = f"Airflow connection {aws_conn_id!r}"
        extra = connection.extra_dejson
        settings.update(
            {
                key: value
                for key, value in {
                    "access_key": connection.login,
                    "secret_key": connection.password,
                    "session_token": extra.get("aws_session_token"),
                    "region": extra.get("region_name"),
                    "endpoint": extra.get("endpoint_url")
                    or extra.get("service_config", {}).get("s3", {}).get("endpoint_url"),
                }.items()
                if value
            }
        )
    return settings


def _s3_filesystem(settings: Mapping[str, str]) -> Any:
    from pyarrow.fs import AwsStandardS3RetryStrategy, S3FileSystem

    endpoint = urlparse(settings["endpoint"]) if settings["endpoint"] else None
    return S3FileSystem(
        access_key=settings["access_key"] or None,
        secret_key=settings["secret_key"] or None,
        session_token=settings["session_token"] or None,
        region=settings["region"],
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        # the bucket is the team's, made with its policies (README, Production)
        allow_bucket_creation=False,
        allow_bucket_deletion=False,
        # a file smaller than one part is one PUT at close, not three requests (4 ms, not 94,
        # on radosgw); a larger one becomes a multipart upload once its first part is full
        allow_delayed_open=True,
        retry_strategy=AwsStandardS3RetryStrategy(max_attempts=int(settings["attempts"])),
        connect_timeout=float(settings["connect_timeout"]),
        request_timeout=float(settings["request_timeout"]),
    )


def _delta_options(settings: Mapping[str, str]) -> dict[str, str]:
    options = {
        "AWS_REGION": settings["region"],
        # commits are conditional PUTs: two writers of one table never overwrite an entry
        "conditional_put": "etag",
        # the same patience as the filesystem's (object_store would retry for 3 minutes)
        "max_retries": str(int(settings["attempts"]) - 1),
        "retry_timeout": f"{int(settings['attempts']) * float(settings['request_timeout']):g}s",
        "timeout": f"{float(settings['request_timeout']):g}s",
        "connect_timeout": f"{float(settings['connect_timeout']):g}s",
    }
    if settings["access_key"]:
        options["AWS_ACCESS_KEY_ID"] = settings["access_key"]
        options["AWS_SECRET_ACCESS_KEY"] = settings["secret_key"]
    if settings["session_token"]:
        options["AWS_SESSION_TOKEN"] = settings["session_token"]
    if settings["endpoint"]:
        options["AWS_ENDPOINT_URL"] = settings["endpoint"]
        options["AWS_ALLOW_HTTP"] = str(settings["endpoint"].startswith("http://")).lower()
    return options
