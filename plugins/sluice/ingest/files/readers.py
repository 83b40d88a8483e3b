"""Native readers of one file, in bounded batches: pyarrow.json, pyarrow.csv, lxml.

Every reader yields :class:`Rows` (records as dicts, with the Arrow schema they were read
with) and :class:`Reject` (one read record that cannot be a record, with the reason); a
file that cannot be trusted at all raises :class:`FileRejected`. Nothing reads a whole
file into memory: decompression is streamed and bounded, records come in blocks.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import pyarrow as pa

from sluice.core.sources import FileFormat
from sluice.lake.storage import LakeAccessError

#: bytes a reader decodes at a time (pyarrow's block size)
BLOCK_BYTES = 1 << 20
#: a record (a JSON line, a JSON array element) longer than this is quarantined unread
MAX_RECORD_BYTES = 8 << 20
#: rows per batch handed to the landing
BATCH_ROWS = 10_000
#: a compressed file may always expand to this much, whatever its ratio
EXPANSION_ALLOWANCE = 1 << 20
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}


class FileRejected(Exception):
    """The whole file cannot be landed; the message is the reason."""


@dataclass
class Rows:
    rows: list[dict[str, Any]]
    schema: pa.Schema


@dataclass
class Reject:
    reason: str
    data: dict[str, Any]


Opener = Callable[[], IO[bytes]]


class _Bounded(io.RawIOBase):
    """A decompressed stream that refuses to expand past ``limit`` bytes (a zip bomb)."""

    def __init__(self, stream: Any, limit: int | None) -> None:
        self.stream, self.limit, self.seen = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        self.seen += len(data)
        if self.limit is not None and self.seen > self.limit:
            raise FileRejected(f"decompresses past {self.limit} bytes (a compression bomb?): refused")
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


class _Store(io.RawIOBase):
    """A file of the lake as its store serves it: the store failing (the network, the server)
    raises :class:`LakeAccessError`, never taken for a fault of the file itself."""

    def __init__(self, lake: Any, path: str) -> None:
        self.uri = lake.uri(path)
        self.stream = self._call(lake.fs.open_input_stream, path, compression=None)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except FileNotFoundError:
            raise
        except OSError as error:
            raise LakeAccessError(f"the lake's store failed while {self.uri} was read: {error}") from error

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._call(self.stream.read, None if size is None or size < 0 else size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if getattr(self, "stream", None) is not None:  # not when the open failed
            self.stream.close()
        super().close()


def opener(lake: Any, path: str, size: int, fmt: FileFormat) -> Opener:
    """Opens ``path`` afresh on each call, decompressed by its suffix, bounded."""
    compression = next((c for suffix, c in COMPRESSIONS.items() if path.endswith(suffix)), None)

    def open_() -> IO[bytes]:
        raw = _Store(lake, path)
        if compression is None:
            return io.BufferedReader(_Bounded(raw, None), BLOCK_BYTES)
        limit = max(int(size * fmt.max_expansion), EXPANSION_ALLOWANCE)
        return io.BufferedReader(_Bounded(pa.CompressedInputStream(raw, compression), limit), BLOCK_BYTES)

    return open_


def snake_case(name: str) -> str:
    """``Customer ID`` -> ``customer_id``, ``createdAt`` -> ``created_at``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _header(names: list[str]) -> list[str]:
    """Header names as snake_case, unique, never empty."""
    seen: dict[str, int] = {}
    out = []
    for i, original in enumerate(names):
        name = snake_case(original) or f"column_{i + 1}"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def map_leaves(data_type: pa.DataType, leaf: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    """``data_type`` with ``leaf`` applied to every type that is not a struct or a list."""
    if pa.types.is_struct(data_type):
        return pa.struct([f.with_type(map_leaves(f.type, leaf)) for f in data_type])
    if pa.types.is_list(data_type):
        return pa.list_(map_leaves(data_type.value_type, leaf))
    return leaf(data_type)


def _strings_for_timestamps(data_type: pa.DataType) -> pa.DataType:
    """JSON has no timestamps: what pyarrow infers as one stays the string it was."""

    def leaf(t: pa.DataType) -> pa.DataType:
        return pa.string() if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t) else t

    return map_leaves(data_type, leaf)


def read_jsonl(open_: Opener, fmt: FileFormat, lines: bool) -> Iterator[Rows | Reject]:
    """JSON Lines through pyarrow.json; ``lines``: line by line, each bad line quarantined."""
    if lines:
        yield from _json_lines(open_)
        return
    import pyarrow.json as pajson

    read_options = pajson.ReadOptions(block_size=BLOCK_BYTES, use_threads=False)
    with open_() as stream:
        first = pajson.open_json(stream, read_options=read_options).schema
    schema = pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in first])
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    with open_() as stream:
        for batch in pajson.open_json(stream, read_options=read_options, parse_options=parse):
            batch_schema = pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in batch.schema])
            yield Rows(
                batch.cast(batch_schema).to_pylist() if batch_schema != batch.schema else batch.to_pylist(),
                batch_schema,
            )


def _scalar(data_type: pa.DataType) -> bool:
    return not (pa.types.is_struct(data_type) or pa.types.is_list(data_type))


def merge_field(known: pa.Field, new: pa.Field) -> pa.Field:
    """The type a JSON field takes when its values disagree, never losing a value: null
    gives way, integers and floats widen to floats, structs merge their fields and lists
    their items; any other pair (a number or a bool beside text, a struct or a list beside
    anything else) widens to text, each value kept as its JSON text (see :func:`conform`)."""
    a, b = known.type, new.type
    if a == b or pa.types.is_null(b):
        return known
    if pa.types.is_null(a):
        return known.with_type(b)
    numbers = (pa.types.is_integer(a) or pa.types.is_floating(a), pa.types.is_integer(b) or pa.types.is_floating(b))
    if all(numbers):
        return known.with_type(pa.float64())
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        return known.with_type(pa.struct(merge_fields(list(a), list(b))))
    if pa.types.is_list(a) and pa.types.is_list(b):
        item = merge_field(pa.field("item", a.value_type), pa.field("item", b.value_type))
        return known.with_type(pa.list_(item.type))
    return known.with_type(pa.string())


def merge_fields(known: list[pa.Field], new: list[pa.Field], fixed: frozenset[str] = frozenset()) -> list[pa.Field]:
    """``known`` with the columns of ``new``; a ``fixed`` column keeps its type whatever."""
    fields = {f.name: f for f in known}
    for f in new:
        if f.name not in fields:
            fields[f.name] = f
        elif f.name not in fixed:
            fields[f.name] = merge_field(fields[f.name], f)
    return list(fields.values())


def conform(value: Any, data_type: pa.DataType) -> Any:
    """``value`` as a column of ``data_type`` holds it: in a text column a number, a bool,
    an object or an array is its JSON text, in a struct or a list so is each part."""
    if value is None:
        return None
    if pa.types.is_string(data_type):
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if pa.types.is_struct(data_type) and isinstance(value, dict):
        types = {f.name: f.type for f in data_type}
        return {k: conform(v, types[k]) if k in types else v for k, v in value.items()}
    if pa.types.is_list(data_type) and isinstance(value, list):
        return [conform(v, data_type.value_type) for v in value]
    return value


def _value_field(name: str, value: Any) -> pa.Field:
    """The Arrow field of one JSON value; an array whose items disagree is text."""
    try:
        return pa.field(name, pa.array([value]).type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.field(name, pa.string())


def _infer(rows: list[Any]) -> pa.Schema:
    """The Arrow schema of JSON objects, a field whose values disagree widened by
    :func:`merge_field`."""
    objects = [row for row in rows if isinstance(row, dict)]
    try:
        return pa.Table.from_pylist(objects).schema
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    fields: list[pa.Field] = []
    for row in objects:
        fields = merge_fields(fields, [_value_field(name, value) for name, value in row.items()])
    return pa.schema(fields)


def _rows(rows: list[Any]) -> Rows:
    schema = _infer(rows)
    return Rows(rows, pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in schema]))


def _json_lines(open_: Opener) -> Iterator[Rows | Reject]:
    rows: list[Any] = []
    with open_() as raw:
        stream = raw
        number = 0
        while True:
            line = stream.readline(MAX_RECORD_BYTES + 1)
            if not line:
                break
            number += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := stream.readline(BLOCK_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield Reject(f"line longer than {MAX_RECORD_BYTES} bytes: not read", {"line": number})
                continue
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8")))
            except UnicodeDecodeError as error:
                yield Reject(f"not valid UTF-8: {error}", {"line": number, "text": line[:200].decode("latin-1")})
            except json.JSONDecodeError as error:
                yield Reject(
                    f"not valid JSON: {error}", {"line": number, "text": line[:200].decode("utf-8", "replace")}
                )
            if len(rows) >= BATCH_ROWS:
                yield _rows(rows)
                rows = []
    if rows:
        yield _rows(rows)


def read_json_array(open_: Opener) -> Iterator[Rows | Reject]:
    """One JSON array of records, element by element (never the whole document at once)."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    rows: list[Any] = []
    with open_() as stream:
        buffer, position, eof, started = "", 0, False, False

        def more() -> bool:
            nonlocal buffer, position, eof
            if eof:
                return False
            chunk = stream.read(BLOCK_BYTES)
            try:
                text = text_decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise FileRejected(f"not valid UTF-8: {error}") from error
            eof = not chunk
            buffer, position = buffer[position:] + text, 0
            if len(buffer) > MAX_RECORD_BYTES:
                raise FileRejected(f"a record longer than {MAX_RECORD_BYTES} bytes: refused")
            return True

        def skip_space() -> str:
            nonlocal position
            while True:
                while position < len(buffer) and buffer[position] in " \t\r\n":
                    position += 1
                if position < len(buffer):
                    return buffer[position]
                if not more():
                    return ""

        if skip_space() != "[":
            raise FileRejected("not a JSON array of records")
        position += 1
        while True:
            token = skip_space()
            if token == "]" and not rows and not started:
                break
            if token == "":
                raise FileRejected("truncated JSON: the array does not end")
            while True:
                try:
                    value, end = decoder.raw_decode(buffer, position)
                    if end == len(buffer) and not eof and isinstance(value, int | float):
                        raise ValueError("a number may go on")
                    break
                except ValueError as error:
                    if not more():
                        raise FileRejected(f"truncated or invalid JSON: {error}") from error
            position, started = end, True
            rows.append(value)
            if len(rows) >= BATCH_ROWS:
                yield _rows(rows)
                rows = []
            token = skip_space()
            if token == ",":
                position += 1
                continue
            if token == "]":
                break
            raise FileRejected(f"invalid JSON: expected ',' or ']' at character {position}")
    if rows:
        yield _rows(rows)


def read_csv(open_: Opener, fmt: FileFormat) -> Iterator[Rows | Reject]:
    """CSV through pyarrow.csv: every value a string, headers as snake_case, ragged rows
    quarantined with their line."""
    import pyarrow.csv as pacsv

    encoding = "utf8" if codecs.lookup(fmt.encoding).name == "utf-8" else fmt.encoding
    rejects: list[Reject] = []

    def ragged(row: Any) -> str:
        reason = f"row has {row.actual_columns} fields, the header {row.expected_columns}"
        rejects.append(Reject(reason, {"line": row.number, "text": (row.text or "")[:200]}))
        return "skip"

    parse = pacsv.ParseOptions(delimiter=fmt.delimiter, newlines_in_values=True, invalid_row_handler=ragged)
    read = pacsv.ReadOptions(encoding=encoding, block_size=BLOCK_BYTES, use_threads=False)
    with open_() as stream:
        try:
            originals = pacsv.open_csv(stream, read_options=read, parse_options=parse).schema.names
        except pa.ArrowInvalid as error:
            if "Empty CSV file" in str(error):
                raise FileRejected("empty file: no header") from error
            raise
    rejects.clear()
    names = _header(originals)
    read = pacsv.ReadOptions(
        encoding=encoding, block_size=BLOCK_BYTES, use_threads=False, column_names=names, skip_rows=1
    )
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False)
    schema = pa.schema(
        [
            pa.field(name, pa.string(), metadata={"original_name": original})
            for name, original in zip(names, originals, strict=True)
        ]
    )
    with open_() as stream:
        for batch in pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert):
            yield from rejects
            rejects.clear()
            yield Rows(batch.to_pylist(), schema)
    yield from rejects


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _tree(element: Any) -> Any:
    """A leaf's text; an element with children or attributes as a mapping (repeated
    children as a list, its own text under ``text``)."""
    from lxml import etree

    if len(element) == 0 and not element.attrib:
        return element.text
    value: dict[str, Any] = {_local(k): v for k, v in element.attrib.items()}
    for child in element:
        if isinstance(child, etree._Entity):  # an entity no declaration here defines
            raise FileRejected(f"refers to the entity {child.text}: refused, never expanded")
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        name, inner = _local(child.tag), _tree(child)
        if name not in value:
            value[name] = inner
        elif isinstance(value[name], list):
            value[name].append(inner)
        else:
            value[name] = [value[name], inner]
    if element.text and element.text.strip():
        value["text"] = element.text
    return value


def _record(element: Any) -> dict[str, Any]:
    """One record: its attributes and children by local name, each value text (a child with
    structure, or repeated, as its JSON)."""
    tree = _tree(element)
    if not isinstance(tree, dict):
        return {"text": tree} if tree is not None else {}
    return {name: v if v is None or isinstance(v, str) else json.dumps(v) for name, v in tree.items()}


def record_tag(fmt: FileFormat) -> str:
    """``inv:invoice`` with ``namespaces: {inv: urn:x}`` -> ``{urn:x}invoice``."""
    last = (fmt.record_path or "").rstrip("/").rsplit("/", 1)[-1]
    if ":" in last and not last.startswith("{"):
        prefix, local = last.split(":", 1)
        namespaces = dict(fmt.namespaces)
        if prefix not in namespaces:
            raise FileRejected(f"record_path {fmt.record_path!r}: no namespace declared for {prefix!r}")
        return f"{{{namespaces[prefix]}}}{local}"
    return last


def load_xsd(path: Any) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _refuse_entities(tree: Any) -> None:
    """Refuse a document that declares entities or names an external DTD (where entities
    would come from): neither is ever expanded or fetched."""
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and list(dtd.entities()):
        names = [entity.name for entity in dtd.entities()]
        raise FileRejected(f"declares XML entities {names[:5]}: refused, never expanded or fetched")
    if docinfo.system_url or docinfo.public_id:
        raise FileRejected(f"names an external DTD {docinfo.system_url or docinfo.public_id!r}: refused, never fetched")


def read_xml(open_: Opener, fmt: FileFormat, xsd: Any = None) -> Iterator[Rows | Reject]:
    """XML through lxml's iterparse: one record per ``record_path`` element, each element
    cleared once read; entities never expanded, nothing fetched, a schema checked as it goes."""
    from lxml import etree

    tag = record_tag(fmt)
    rows: list[dict[str, Any]] = []
    with open_() as stream:
        options: dict[str, Any] = {"schema": xsd} if xsd is not None else {}
        context = etree.iterparse(
            stream,
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
            remove_comments=True,
            **options,
        )
        checked = False
        try:
            for event, element in context:
                if not checked:
                    _refuse_entities(element.getroottree())
                    checked = True
                if event != "end" or element.tag != tag:
                    continue
                rows.append(_record(element))
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
                if len(rows) >= BATCH_ROWS:
                    yield _string_rows(rows)
                    rows = []
        except etree.XMLSyntaxError as error:
            if etree.ErrorTypes._getName(error.code, "").startswith("SCHEMAV"):  # the schema's error, not the syntax
                raise FileRejected(f"fails its XSD: {error}") from error
            raise FileRejected(f"not well-formed XML: {error}") from error
    if rows:
        yield _string_rows(rows)


def _string_rows(rows: list[dict[str, Any]]) -> Rows:
    names = list(dict.fromkeys(name for row in rows for name in row))
    return Rows(rows, pa.schema([pa.field(name, pa.string()) for name in names]))
