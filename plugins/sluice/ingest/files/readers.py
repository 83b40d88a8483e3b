"""Native readers of one file, in bounded batches: pyarrow.json, pyarrow.csv, lxml.

Every reader yields :class:`Arrow` (records as an Arrow table, as pyarrow read them or,
for XML, as text columns), :class:`Rows` (records as dicts with the Arrow schema they were
read with: the line-by-line and JSON array readers, where the standard library decodes)
and :class:`Reject` (one read record that cannot be a record, with the reason); a file
that cannot be trusted at all raises :class:`FileRejected`, possibly half-way. Nothing
reads a whole file into memory: decompression is streamed and bounded, records come in
blocks.
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
#: pyarrow.json decodes a block on its threads while the next is read
JSON_THREADS = True
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
class Arrow:
    table: pa.Table


@dataclass
class Reject:
    reason: str
    data: dict[str, Any]


Opener = Callable[..., IO[bytes]]


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
    """Opens ``path`` afresh on each call, decompressed by its suffix, bounded; with
    ``native``, an uncompressed file comes as a pyarrow file over the store (pyarrow's
    readers then take whole blocks, not buffered reads)."""
    compression = next((c for suffix, c in COMPRESSIONS.items() if path.endswith(suffix)), None)

    def open_(native: bool = False) -> IO[bytes]:
        raw = _Store(lake, path)
        if compression is None:
            return pa.PythonFile(raw, mode="r") if native else io.BufferedReader(_Bounded(raw, None), BLOCK_BYTES)
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

    read_options = pajson.ReadOptions(block_size=BLOCK_BYTES, use_threads=JSON_THREADS)
    with open_(native=True) as stream:
        reader = pajson.open_json(stream, read_options=read_options)
        schema = pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in reader.schema])
        if schema == reader.schema:  # nothing inferred as a timestamp: read on
            yield from _json_batches(reader)
            return
    # read again with the inferred timestamps as the text they are
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    with open_(native=True) as stream:
        yield from _json_batches(pajson.open_json(stream, read_options=read_options, parse_options=parse))


def _json_batches(reader: Any) -> Iterator[Arrow]:
    for batch in reader:
        batch.validate(full=True)  # pyarrow.json does not check UTF-8; a bad line sends the file line by line
        batch_schema = pa.schema([f.with_type(_strings_for_timestamps(f.type)) for f in batch.schema])
        yield Arrow(pa.Table.from_batches([batch.cast(batch_schema) if batch_schema != batch.schema else batch]))


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


def _plain_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type)


def conform_array(values: pa.Array, data_type: pa.DataType) -> pa.Array:
    """:func:`conform` over a column: ``values`` as a column of ``data_type`` holds them.

    Vectorised where Arrow's own cast gives what :func:`conform` would (text, integers and
    bools to text, integers to floats, structs and lists part by part); anything else
    (a float, a struct or a list as JSON text) value by value. Raises when a value does not
    fit at all (a caller then isolates the rows)."""
    source = values.type
    if source == data_type:
        return values
    if values.null_count == len(values):
        return pa.nulls(len(values), data_type)
    if pa.types.is_string(data_type):
        if _plain_text(source) or pa.types.is_integer(source) or pa.types.is_boolean(source):
            return values.cast(data_type)
    elif pa.types.is_floating(data_type) and (pa.types.is_integer(source) or pa.types.is_floating(source)):
        return values.cast(data_type, safe=False)  # as Python's int -> float: no range check
    elif pa.types.is_integer(data_type) and (pa.types.is_integer(source) or pa.types.is_floating(source)):
        return values.cast(data_type)  # refuses a fraction or an overflow
    elif pa.types.is_struct(data_type) and pa.types.is_struct(source):
        names = {f.name for f in source}
        children = [
            conform_array(values.field(f.name), f.type) if f.name in names else pa.nulls(len(values), f.type)
            for f in data_type
        ]
        mask = values.is_null() if values.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(data_type), mask=mask)
    elif pa.types.is_list(data_type) and (pa.types.is_list(source) or pa.types.is_large_list(source)):
        offsets = values.offsets.to_numpy()
        start = int(offsets[0])  # a slice's items start where its first list does
        items = values.values.slice(start, int(offsets[-1]) - start)
        items = conform_array(items, data_type.value_type)
        mask = values.is_null() if values.null_count else None
        rebased = pa.array(offsets - start, pa.int32())
        return pa.ListArray.from_arrays(rebased, items, type=data_type, mask=mask)
    return pa.array([conform(value, data_type) for value in values.to_pylist()], data_type)


def empty_records(count: int) -> pa.Table:
    """``count`` records without a field (a table of no columns still has its rows)."""
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.nulls(count, pa.struct([])).fill_null({}))])


def conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema``, in its order, each conformed
    (:func:`conform_array`); a column the table lacks is null."""
    if not len(schema):
        return empty_records(table.num_rows)
    if table.schema.equals(schema, check_metadata=False):
        return pa.Table.from_arrays(table.columns, schema=schema)
    names = set(table.column_names)
    columns = []
    for f in schema:
        if f.name not in names:
            columns.append(pa.nulls(table.num_rows, f.type))
            continue
        column = table.column(f.name)
        if column.type != f.type:
            column = pa.chunked_array([conform_array(chunk, f.type) for chunk in column.chunks], f.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


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
    names = list(dict.fromkeys(name for row in objects for name in row))  # every record's, not the first's
    try:
        return pa.Table.from_arrays([pa.array([row.get(name) for row in objects]) for name in names], names).schema
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
    with open_(native=True) as stream:
        for batch in pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert):
            yield from rejects
            rejects.clear()
            yield Arrow(pa.Table.from_arrays(batch.columns, schema=schema))
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


def _record(element: Any, local: dict[str, str]) -> dict[str, Any]:
    """One record: its attributes and children by local name, each value text (a child with
    structure, or repeated, as its JSON); ``local`` caches the local names of tags.

    The same mapping as :func:`_tree` of the record, its values as text, without a call
    per child: a leaf child without attributes (nearly all of them) is its text.
    """
    attributes = element.attrib
    if len(element) == 0 and not attributes:
        text = element.text
        return {"text": text} if text is not None else {}
    row: dict[str, Any] = {_local(k): v for k, v in attributes.items()} if attributes else {}
    nested = False
    for child in element:
        tag = child.tag
        if tag.__class__ is not str:  # comments, processing instructions: skipped; an entity refused
            from lxml import etree

            if isinstance(child, etree._Entity):
                raise FileRejected(f"refers to the entity {child.text}: refused, never expanded")
            continue
        name = local.get(tag)
        if name is None:
            name = local[tag] = _local(tag)
        if len(child) or child.attrib:
            value, nested = _tree(child), True
        else:
            value = child.text
        if name not in row:
            row[name] = value
            continue
        nested = True
        if isinstance(row[name], list):
            row[name].append(value)
        else:
            row[name] = [row[name], value]
    text = element.text
    if text and text.strip():
        row["text"] = text
    if nested:
        return {name: v if v is None or isinstance(v, str) else json.dumps(v) for name, v in row.items()}
    return row


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


def read_xml(open_: Opener, fmt: FileFormat, xsd: Any = None) -> Iterator[Arrow]:
    """XML through lxml's iterparse: one record per ``record_path`` element (the parser
    hands over only those), each element cleared once read; entities never expanded,
    nothing fetched, a schema checked as it goes. Records come as text columns."""
    from lxml import etree

    tag = record_tag(fmt)
    rows: list[dict[str, Any]] = []
    local: dict[str, str] = {}
    with open_() as stream:
        options: dict[str, Any] = {"schema": xsd} if xsd is not None else {}
        context = etree.iterparse(
            stream,
            events=("start", "end"),  # a record's start: its document's declarations are read by then
            tag=tag,
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
                if event == "start":
                    if not checked:  # before the first record's content is parsed
                        _refuse_entities(element.getroottree())
                        checked = True
                    continue
                rows.append(_record(element, local))
                element.clear(keep_tail=False)
                while element.getprevious() is not None:
                    del element.getparent()[0]
                if len(rows) >= BATCH_ROWS:
                    yield _string_table(rows)
                    rows = []
            if not checked and context.root is not None:
                _refuse_entities(context.root.getroottree())
        except etree.XMLSyntaxError as error:
            if etree.ErrorTypes._getName(error.code, "").startswith("SCHEMAV"):  # the schema's error, not the syntax
                raise FileRejected(f"fails its XSD: {error}") from error
            raise FileRejected(f"not well-formed XML: {error}") from error
    if rows:
        yield _string_table(rows)


def _string_table(rows: list[dict[str, Any]]) -> Arrow:
    """Records of text values as text columns, named in the order they first appear."""
    names: dict[str, None] = {}
    known = names.keys()
    for row in rows:
        if row.keys() != known:
            names.update(dict.fromkeys(row))
    if not names:
        return Arrow(empty_records(len(rows)))
    text = pa.string()
    return Arrow(pa.table({name: pa.array([row.get(name) for row in rows], text) for name in names}))
