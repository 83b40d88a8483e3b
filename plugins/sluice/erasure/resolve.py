"""From the one identifier a request names to every identifier the platform holds for
that person: an email to the user id, through every stream that declares both.

The lookup goes through the subject index, so it reads only the files holding the
person (and queries the warehouse tables the lake does not hold), and repeats until no
stream adds an identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pyarrow.parquet as pq

from sluice.core.sources import SourceConfig
from sluice.lake.files import bronze_table_path
from sluice.lake.index import files_holding, identifier_hashes, normalise, verified_index
from sluice.lake.rewrite import matches
from sluice.lake.storage import Lake


class RequestError(ValueError):
    """An erasure request that cannot be carried out as given; nothing was changed."""


def declared_types(sources: Iterable[SourceConfig]) -> set[str]:
    return {kind for source in sources for stream in source.streams for _, kind in stream.identifiers}


def resolve(
    lake: Lake,
    sources: Iterable[SourceConfig],
    request: Mapping[str, Iterable[Any]],
    salt: bytes,
    warehouse: Callable[[Mapping[str, set[str]]], Mapping[str, set[str]]] | None = None,
) -> dict[str, set[str]]:
    """Every identifier of the people ``request`` names (identifier type -> values),
    normalised as the index hashes them.

    :param warehouse: the identifiers held for the people known so far in tables the lake
        does not hold (an Airbyte connection writing the warehouse), when there are any

    :raises RequestError: a type no stream declares, or identifiers found nowhere
    """
    sources = list(sources)
    known_types = declared_types(sources)
    if unknown := sorted(set(request) - known_types):
        raise RequestError(f"identifier type(s) {unknown} are declared by no stream; declared: {sorted(known_types)}")
    known = {kind: {normalise(kind, value) for value in values} for kind, values in request.items()}
    if not any(known.values()):
        raise RequestError("the request names no identifier")
    found_anywhere, changed = False, True
    while changed:
        changed = False
        for source in sources:
            for stream in source.streams:
                types = stream.identifier_types
                if not types:
                    continue
                verified_index(lake, source.name, stream, salt)
                hashes = identifier_hashes({kind: known.get(kind, ()) for kind in set(types.values())}, salt)
                holding = files_holding(lake, source.name, stream.name, hashes)
                found_anywhere |= bool(holding)
                if len(set(types.values())) < 2:
                    continue
                table_path = bronze_table_path(lake, source.name, stream.name)
                for name in holding:
                    with lake.fs.open_input_file(f"{table_path}/{name}") as file:
                        data = pq.read_table(file, columns=list(types))
                    rows = data.filter(matches(data, stream, known))
                    for column, kind in types.items():
                        values = {normalise(kind, v) for v in rows.column(column).to_pylist() if v is not None}
                        if not values <= known.setdefault(kind, set()):
                            known[kind] |= values
                            changed = True
        if warehouse is not None:
            for kind, values in warehouse(known).items():
                found_anywhere |= bool(values)
                if not values <= known.setdefault(kind, set()):
                    known[kind] |= values
                    changed = True
    if not found_anywhere:
        raise RequestError(f"no data is held for {_describe(request)}: nothing to erase")
    return known


def _describe(request: Mapping[str, Iterable[Any]]) -> str:
    """The request's identifiers by type and count: never their values (logs keep messages)."""
    return ", ".join(f"{len(list(values))} {kind} identifier(s)" for kind, values in request.items())
