"""The lake's storage: a local folder or an S3 prefix, behind one interface.

``SLUICE_LAKE_ROOT`` chooses it: a folder path (the embedded default) or
``s3://bucket/prefix``. Files are read and written through pyarrow's filesystems, and
Delta tables get the matching deltalake storage options, so nothing else in Sluice asks
which one it has.

S3 has no rename. Each object appears whole when its upload completes, which is what the
lake's guarantees rest on: a file written under a name no reader looks up yet, a manifest
written last in one PUT, a Delta commit as a conditional PUT (``conditional_put=etag``)
so concurrent writers of one table never overwrite each other's log entry.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

DEFAULT_AWS_CONN_ID = "aws_default"


class LakeConfigError(ValueError):
    pass


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
        if not self.exists(path):  # S3 reports a missing key as a bare OSError
            raise FileNotFoundError(f"no file {self.uri(path)}")
        with self.fs.open_input_stream(path) as stream:
            return stream.read()

    def open_output_stream(self, path: str) -> Any:
        """A stream writing ``path``; on S3 the object appears once the stream is closed."""
        if self.scheme == "file":
            os.makedirs(posixpath.dirname(path), exist_ok=True)
        return self.fs.open_output_stream(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``path`` whole or not at all: readers see the old object or the new one."""
        if self.scheme == "file":
            write_atomically(Path(path), lambda temporary: temporary.write_bytes(data))
            return
        with self.fs.open_output_stream(path) as stream:  # one PUT, visible once complete
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
    from sluice import config

    root = root or config.lake_root()
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        from pyarrow.fs import LocalFileSystem

        return Lake(fs=LocalFileSystem(), root=os.path.abspath(parsed.path if parsed.scheme else root))
    if parsed.scheme not in ("s3", "s3a"):
        raise LakeConfigError(f"SLUICE_LAKE_ROOT={root!r}: expected a folder or s3://bucket/prefix")
    if not parsed.netloc:
        raise LakeConfigError(f"SLUICE_LAKE_ROOT={root!r}: no bucket named")
    settings = s3_settings(aws_conn_id or os.environ.get("SLUICE_AWS_CONN_ID") or DEFAULT_AWS_CONN_ID)
    return Lake(
        fs=_s3_filesystem(settings),
        root=posixpath.join(parsed.netloc, parsed.path.strip("/")).rstrip("/"),
        scheme="s3",
        storage_options=_delta_options(settings),
    )


def s3_settings(aws_conn_id: str) -> dict[str, str]:
    """Credentials, region and endpoint for S3: the Airflow connection's, else the environment's."""
    settings = {
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "session_token": os.environ.get("AWS_SESSION_TOKEN", ""),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "endpoint": os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", ""),
    }
    connection = _airflow_connection(aws_conn_id)
    if connection is not None:
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


def _airflow_connection(conn_id: str) -> Any | None:
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        try:
            from airflow.hooks.base import BaseHook  # Airflow 2.11
        except ImportError:  # plain Python, no Airflow
            return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # missing connection: the environment's settings apply
        if type(exc).__name__ not in ("AirflowNotFoundException", "AirflowException"):
            raise
        return None


def _s3_filesystem(settings: Mapping[str, str]) -> Any:
    from pyarrow.fs import S3FileSystem

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
    )


def _delta_options(settings: Mapping[str, str]) -> dict[str, str]:
    options = {
        "AWS_REGION": settings["region"],
        # commits are conditional PUTs: two writers of one table never overwrite an entry
        "conditional_put": "etag",
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
