"""The files driver's ledger: which file (by path and content hash) each batch took.

The ledger is no separate store: each published landing's manifest carries the entries
of the files its batch took (``inputs``), written whole with the landing, so the ledger
is exactly what was published. A rerun of a batch takes the files its own entry names;
a new batch takes what no other batch's entry holds.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sluice.lake.storage import Lake, LakeAccessError

#: statuses of files a batch took: none of them is taken again
TAKEN = ("ingested", "quarantined", "duplicate")
#: names of files still being written by the uploader's convention
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart")


@dataclass(frozen=True)
class Listed:
    path: str  # on the lake's filesystem
    size: int
    #: named as an upload still under way (``.part``, ``.tmp``): never read
    partial: bool = False


def inbox_folder(lake: Lake, source: str, stream: str) -> str:
    return lake.path("inbox", source, stream)


def list_inbox(lake: Lake, source: str, stream: str, pattern: str) -> list[Listed]:
    """Files of the stream's inbox whose name matches ``pattern`` (hidden files aside), by
    name; a name of a partial upload (``orders.csv.part``) is offered as partial."""
    from pyarrow.fs import FileSelector, FileType

    selector = FileSelector(inbox_folder(lake, source, stream), allow_not_found=True, recursive=False)
    listed = []
    for info in lake.fs.get_file_info(selector):
        name = posixpath.basename(info.path)
        if info.type != FileType.File or name.startswith("."):
            continue
        partial = name.lower().endswith(PARTIAL_SUFFIXES)
        if fnmatch.fnmatchcase(posixpath.splitext(name)[0] if partial else name, pattern):
            listed.append(Listed(info.path, info.size, partial))
    return sorted(listed, key=lambda entry: entry.path)


def sha256_of(lake: Lake, path: str) -> tuple[str, int]:
    """The content hash and size of the file, read in blocks; the store failing raises
    :class:`LakeAccessError` (a hash taken on a thread must not pass for a bad file)."""
    digest, size = hashlib.sha256(), 0
    try:
        with lake.fs.open_input_stream(path, compression=None) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise LakeAccessError(f"the lake's store failed while {lake.uri(path)} was hashed: {error}") from error
    return digest.hexdigest(), size


def taken_by_others(lake: Lake, source: str, stream: str, batch: str) -> list[dict[str, Any]]:
    """The ledger entries of every other published batch of the stream."""
    folder = lake.path("landing", source, stream)
    entries = []
    for path in lake.list_files(folder):
        name = posixpath.basename(path)
        if not (name.startswith("batch=") and name.endswith(".json")) or name == f"batch={batch}.json":
            continue
        manifest = lake.read_json(path) or {}
        entries.extend(entry for entry in manifest.get("inputs", []) if entry.get("status") in TAKEN)
    return entries


class Classifier:
    """The fold :func:`classify` runs, one listed file at a time and in listing order, so
    a caller can hash (and read) a file while it decides: each file is ``take`` (new, or a
    new version of a name), ``duplicate`` (content another file brought), ``deferred``
    (still being written) or ``gone`` (deleted before it could be read); a file the
    ledger holds is left out."""

    def __init__(self, lake: Lake, taken: list[dict[str, Any]]) -> None:
        self.lake = lake
        self.by_path = {(entry["path"], entry["sha256"]) for entry in taken}
        self.paths = {entry["path"] for entry in taken}
        self.by_hash = {entry["sha256"]: entry["path"] for entry in taken if entry["status"] != "duplicate"}
        self.versions: dict[str, int] = {}
        for entry in taken:
            self.versions[entry["path"]] = max(self.versions.get(entry["path"], 0), entry.get("version", 1))

    def known(self, file: Listed) -> bool:
        """Whether the ledger holds a file of this name (then it is most likely left out)."""
        return self.lake.relative(file.path) in self.paths

    def entry(self, file: Listed, hashed: Callable[[], tuple[str, int]] | None = None) -> dict[str, Any] | None:
        """The file's entry (None: the ledger holds it); ``hashed`` gives its content hash
        and size (:func:`sha256_of` unless given)."""
        relative = self.lake.relative(file.path)
        if file.partial:
            return {"path": relative, "status": "deferred", "reason": "a partial upload: not read until renamed"}
        try:
            sha, size = hashed() if hashed is not None else sha256_of(self.lake, file.path)
        except FileNotFoundError:
            return {"path": relative, "status": "gone", "reason": "deleted before it could be read"}
        if size != file.size:
            reason = f"still being written: {file.size} bytes listed, {size} read"
            return {"path": relative, "sha256": sha, "size": size, "status": "deferred", "reason": reason}
        if (relative, sha) in self.by_path:
            return None
        entry = {"path": relative, "sha256": sha, "size": size}
        if sha in self.by_hash:
            return {**entry, "status": "duplicate", "duplicate_of": self.by_hash[sha]}
        self.by_hash[sha] = relative
        return {**entry, "status": "take", "version": self.versions.get(relative, 0) + 1}


def classify(lake: Lake, listed: Iterable[Listed], taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This batch's entries: each listed file, hashed, as ``take`` (new, or a new version of
    a name), ``duplicate`` (content another file brought), ``deferred`` (still being
    written) or ``gone`` (deleted before it could be read); files the ledger holds are left out."""
    classifier = Classifier(lake, taken)
    return [entry for file in listed if (entry := classifier.entry(file)) is not None]
