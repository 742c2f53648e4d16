"""Poison inputs for the registry connectors: the real sample inputs, mutated, through each
connector's public parsing entry point.

Every connector promises an outcome for bad input — a record or an :class:`ExtractError` per
line (CPR extract), an :class:`EnvelopeError` (envelopes), a problem naming txid and
sekvensnummer or a ``ValueError`` naming the line (DAWA replication), a failure counted for the
round (the DAR and ATP pollers) — and never an uncaught TypeError, KeyError, AttributeError,
RecursionError, OverflowError …, never a silently lost record and never a CPR number in clear in
an error message. The property tests below mutate the samples (truncated and flipped lines,
inserted bytes, non-ASCII, invalid UTF-8, wrong lengths, empty and huge fields; XML elements
deleted, duplicated, nested, renamed into other namespaces, entities; JSON values of every type
at every place of an envelope, a replication event or a UDK record) and check exactly that. The
plain tests at the end are the regressions for the crashes the fuzzing found.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from connectors.atp.poller import AtpPoller, diff_udk
from connectors.cpr.events import Skipped, to_canonical
from connectors.cpr.extract import ExtractError, ExtractRecord, read_extract_stream
from connectors.cpr.ingest import ingest_cpr_extract
from connectors.cpr.layout import LAYOUTS
from connectors.cpr.snapshot import write_persons
from connectors.dar.ingest import ingest_dar_replication
from connectors.dar.poller import poll_dar
from connectors.dar.replication import AddressBook, convert_replication, read_replication_file
from connectors.envelope import Envelope, EnvelopeError, convert_envelope, parse_envelope
from connectors.envelope.ingest import ingest_envelopes
from connectors.envelope.kombit import parse_kombit
from connectors.ids import IdKey
from triage.models.events import InvalidEvent, parse_event

FIXTURES = Path(__file__).parent / "fixtures"
CPR_SAMPLE = (FIXTURES / "cpr" / "U12170-P opgavenr 110901 ADRNVN FE").read_bytes()
KOMBIT = [(FIXTURES / "kombit" / f"testbesked0{n}.xml").read_bytes() for n in (1, 2, 3)]
ENVELOPES = [json.loads(p.read_text(encoding="utf-8"))
             for p in sorted((FIXTURES / "envelope").glob("*.json"))]
DAWA = json.loads((FIXTURES / "dawa" / "replication-events-from-spec.json").read_text("utf-8"))
DAR_STREAM = [json.loads(line) for line in
              (FIXTURES / "dar" / "replication.jsonl").read_text("utf-8").splitlines()
              if line.strip()]
DAR_EXTRACT = json.loads((FIXTURES / "dar" / "extract.json").read_text(encoding="utf-8"))
UDK_BEFORE = json.loads((FIXTURES / "atp" / "udk_before.json").read_text(encoding="utf-8"))
UDK_AFTER = json.loads((FIXTURES / "atp" / "udk_after.json").read_text(encoding="utf-8"))
KEY = IdKey(b"fuzz-key")

CPR_IN_CLEAR = re.compile(r"[0-9]{10}|[0-9]{6}-[0-9]{4}")
"""Ten ASCII digits, or DDMMYY-SSSS: what a CPR number looks like in clear (masked numbers read
``DDMMYY-****``)."""

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def no_cpr(text: str) -> None:
    assert not CPR_IN_CLEAR.search(text), text


# --- values a poison input is made of --------------------------------------------------------

NASTY_TEXT = st.sampled_from([
    "", " ", "\x00", "²", "¹³", "٣", "１２", "\ufeff", "æøå", "\u202e", "\x1a", "\r\n", "\n",
    "0101901234", "010190-1234", "urn:oio:cpr-nr:0101901234", "urn:oio:cpr-nr:", "x" * 5000,
    "2016-03-13T08:00:00", "2016-03-13T08:00:00.1234567+01:00", "9999-12-31T23:59:59",
    "0001-01-01T00:00:00+14:00", "2016-13-45T25:61:61", "nan", "inf", "-1e999", "1e400",
    "298aa424-fc4f-4fa7-96b4-2bdab17fd11f", "A21", "Fødsel", "01", "90", "G", "&amp;", "<a/>",
])
TEXT = NASTY_TEXT | st.text(max_size=20)
SCALAR = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
          | st.integers(10**300, 10**400) | st.floats() | TEXT)
JSON_VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)
"""Every JSON type (and what Python's json reads besides: NaN, ±Infinity, integers beyond 64
bits)."""
NASTY_BYTES = st.sampled_from([b"\x00", b"\xb2", b"\xb9", b"\x1a", b"\r", b"\n", b"\xff\xfe",
                               b"\xc3\x28", b"\xe6\xf8\xe5", b"0101901234", b"  "]) | st.binary(
    max_size=12)


def nodes(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in a JSON document (the root is ``()``)."""
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from nodes(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from nodes(value, (*path, index))


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any, *, rounds: int = 3) -> Any:
    """``doc`` with a few values replaced by any JSON, deleted, wrapped in a list or an object,
    or duplicated."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, rounds))):
        path = draw(st.sampled_from(list(nodes(doc))))
        op = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "nest", "dup"]))
        value = draw(JSON_VALUE)
        if not path:
            doc = value if op == "replace" else [doc, doc] if op == "dup" else {"x": doc}
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if op == "replace":
            parent[last] = value
        elif op == "delete":
            del parent[last]
        elif op == "wrap":
            parent[last] = [parent[last]]
        elif op == "nest":
            parent[last] = {"value": parent[last]}
        elif isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        else:
            parent[f"{last}"] = copy.deepcopy(parent[last])
            parent[f"{last}".upper()] = copy.deepcopy(parent[last])  # a case-folded twin
    return doc


def dumps(doc: Any) -> bytes:
    """JSON text of ``doc`` as a careless producer writes it (NaN, huge integers and all)."""
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


# --- CPR change extract ------------------------------------------------------------------------

CPR_LINES = CPR_SAMPLE.split(b"\n")


@st.composite
def mutated_extract(draw: st.DrawFn) -> tuple[str, bytes]:
    """(form, bytes): the CPR office's test extract with a few lines damaged, delivered as LF
    lines, as the CRLF original with 0x1A, or as fixed-length records without terminators."""
    lines = list(CPR_LINES[:-1])
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        k = draw(st.integers(0, max(0, len(line))))
        op = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "duplicate",
                                   "replace", "field", "huge"]))
        if op == "truncate":
            lines[i] = line[:k]
        elif op == "flip":
            lines[i] = line[:k] + draw(st.binary(min_size=1, max_size=1)) + line[k + 1:]
        elif op == "insert":
            lines[i] = line[:k] + draw(NASTY_BYTES) + line[k:]
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "replace":
            lines[i] = draw(NASTY_BYTES | st.binary(max_size=60))
        elif op == "field":  # one field of the record overwritten, same length
            layout = LAYOUTS.get(line[:3].decode("latin-1"))
            if layout is not None:
                spec = draw(st.sampled_from(layout.fields))
                value = draw(NASTY_TEXT | st.text(alphabet="0123456789 ²¹³AZ", max_size=12))
                raw = value.encode("latin-1", "replace")[:spec.length].ljust(spec.length)
                padded = line.ljust(layout.length)
                lines[i] = padded[:spec.start - 1] + raw + padded[spec.end:]
        else:
            lines[i] = line + b" " * draw(st.integers(0, 3)) + b"X" * draw(st.integers(0, 300))
        if not lines:
            lines = [b""]
    form = draw(st.sampled_from(["lf", "crlf", "fixed"]))
    if form == "crlf":
        return form, b"\r\n".join(lines) + b"\r\n\x1a"
    if form == "fixed":
        def padded(line: bytes) -> bytes:
            layout = LAYOUTS.get(line[:3].decode("latin-1"))
            return line.ljust(layout.length) if layout is not None else line
        return form, b"".join(padded(line) for line in lines if b"\n" not in line)
    return form, b"\n".join(lines) + b"\n"


def expected_lines(data: bytes) -> set[int]:
    """The numbers of the lines that hold something (each must become a record or an error)."""
    numbers = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text = raw.decode("latin-1").rstrip("\r\n")
        if text.endswith("\x1a"):
            text = text.rstrip("\x1a").rstrip("\r\n")
        if text.strip():
            numbers.add(number)
    return numbers


@FUZZ
@given(mutated_extract())
def test_a_damaged_extract_gives_a_record_or_an_error_for_every_line(sample: tuple[str, bytes],
                                                                      ) -> None:
    form, data = sample
    items = list(read_extract_stream(io.BytesIO(data)))
    assert all(isinstance(i, ExtractRecord | ExtractError) for i in items)
    for item in items:
        if isinstance(item, ExtractError):
            no_cpr(str(item))
    if form != "fixed" and b"\n" in data[:1 << 16]:
        covered = {i.line_number for i in items if i.unit == "line"}
        assert expected_lines(data) <= covered  # no line silently lost
    for out in to_canonical(items, key=KEY):
        assert isinstance(out, dict | ExtractError | Skipped)
        if isinstance(out, dict):
            no_cpr(str(out.get("unclassified_reason") or ""))
        else:
            no_cpr(str(out))


@settings(FUZZ, max_examples=60)
@given(mutated_extract())
def test_a_damaged_extract_is_ingested_with_every_problem_reported(sample: tuple[str, bytes],
                                                                   ) -> None:
    _, data = sample
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "extract", Path(tmp) / "events.jsonl"
        path.write_bytes(data)
        summary = ingest_cpr_extract(path, out=out, key=KEY)
        written = out.read_bytes().splitlines()
        snapshot = write_persons(path, Path(tmp) / "persons.jsonl")
        persons = (Path(tmp) / "persons.jsonl").read_bytes().splitlines()
    assert summary.events == len(written) and snapshot.events == len(persons)
    for line in summary.lines() + snapshot.lines():
        no_cpr(line)


# --- KOMBIT Beskedfordeler XML -----------------------------------------------------------------

KUVERT = "urn:oio:besked:kuvert:1.0"
CPR_SHAPES = ["0101901234", "010190-1234", "x 010190-1234 y", "urn:oio:cpr-nr:010190-1234",
              "2204151234 2204151234"]


def xml_text(text: str) -> str:
    """``text`` without what XML cannot hold at all (most C0 controls, surrogates), which lxml
    refuses to serialise; such bytes come in by the byte-level mutations instead."""
    return "".join(c for c in text if c in "\t\n\r" or (
        c >= " " and c not in "\ufffe\uffff" and not "\ud800" <= c <= "\udfff"))


@st.composite
def mutated_kombit(draw: st.DrawFn) -> bytes:
    root = etree.fromstring(draw(st.sampled_from(KOMBIT)))
    for _ in range(draw(st.integers(1, 4))):
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        element = draw(st.sampled_from(elements))
        parent = element.getparent()
        op = draw(st.sampled_from(["text", "text", "cpr", "delete", "duplicate", "nest",
                                   "namespace", "empty"]))
        if op in ("text", "cpr") or parent is None:
            if len(element) == 0 and op == "cpr":
                element.text = draw(st.sampled_from(CPR_SHAPES))
            elif len(element) == 0:
                element.text = xml_text(draw(TEXT)) or None
            continue
        if op == "delete":
            parent.remove(element)
        elif op == "duplicate":
            parent.insert(parent.index(element), copy.deepcopy(element))
        elif op == "nest":
            draw(st.sampled_from(elements)).append(copy.deepcopy(element))
        elif op == "namespace":
            local = etree.QName(element).localname
            element.tag = draw(st.sampled_from([local, f"{{urn:other}}{local}",
                                                f"{{{KUVERT}}}{local}X"]))
        else:
            for child in list(element):
                element.remove(child)
            element.text = None
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    op = draw(st.sampled_from(["none", "none", "truncate", "flip", "insert", "entity",
                               "external", "laughs", "utf16", "latin1"]))
    k = draw(st.integers(0, len(data)))
    if op == "truncate":
        data = data[:k]
    elif op == "flip":
        data = data[:k] + draw(st.binary(min_size=1, max_size=1)) + data[k + 1:]
    elif op == "insert":
        data = data[:k] + draw(NASTY_BYTES) + data[k:]
    elif op in ("entity", "external", "laughs"):
        body = data.split(b"?>", 1)[1]
        decl = {"entity": b'<!ENTITY e "urn:oio:cpr-nr:0101901234">',
                "external": b'<!ENTITY e SYSTEM "file:///etc/passwd">',
                "laughs": b'<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                          b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
                          b'<!ENTITY e "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'}[op]
        body = body.replace(b"urn:oio:cpr-nr:2204151234", b"&e;").replace(
            b"urn:oio:cpr-nr:2204111236", b"&e;").replace(b"2016-", b"&e;", 1)
        data = b'<?xml version="1.0"?><!DOCTYPE x [' + decl + b"]>" + body
    elif op == "utf16":
        data = data.decode("utf-8").replace("UTF-8", "UTF-16").encode("utf-16")
    elif op == "latin1":  # æøå as latin-1 bytes under a UTF-8 declaration: invalid UTF-8
        data = data.decode("utf-8").encode("latin-1", "replace")
    return data


@FUZZ
@given(mutated_kombit())
def test_a_damaged_kombit_message_is_an_envelope_or_an_envelope_error(data: bytes) -> None:
    try:
        envelope = parse_kombit(data, key=KEY)
    except EnvelopeError as exc:
        no_cpr(str(exc))
        return
    assert isinstance(envelope, Envelope)
    assert "root:" not in repr(envelope)  # an external entity is never resolved
    event = asyncio.run(convert_envelope(envelope, _no_lookup))
    assert isinstance(event["type"], str)
    no_cpr(str(event.get("unclassified_reason") or ""))


async def _no_lookup(cpr: str) -> dict[str, Any] | None:
    raise TimeoutError("no register")


# --- Datafordeler / SF1320 JSON envelopes --------------------------------------------------------

PERSON_KEYS = ("cpr", "address", "previous_address", "civil_status", "spouse_cpr", "status",
               "status_date", "birth_date", "move_date", "parents", "country_code")


@st.composite
def lookups(draw: st.DrawFn) -> Any:
    """A person lookup that fails, knows nobody, or answers with a person of any shape."""
    kind = draw(st.sampled_from(["fail", "none", "person"]))
    person = draw(st.dictionaries(st.sampled_from(PERSON_KEYS), JSON_VALUE, max_size=6))

    async def lookup(cpr: str) -> dict[str, Any] | None:
        if kind == "fail":
            raise ConnectionError("down")
        return None if kind == "none" else {"cpr": cpr, **person}

    return lookup


@FUZZ
@given(doc=st.sampled_from(ENVELOPES).flatmap(mutated_json), as_bytes=st.booleans(),
       lookup=lookups())
def test_a_damaged_json_envelope_is_an_event_or_an_envelope_error(doc: Any, as_bytes: bool,
                                                                   lookup: Any) -> None:
    message: Any = dumps(doc) if as_bytes else doc
    try:
        envelope = parse_envelope(message)
    except EnvelopeError as exc:
        no_cpr(str(exc))
        return
    event = asyncio.run(convert_envelope(envelope, lookup))
    assert isinstance(event["type"], str) and event["cpr"] == envelope.cpr
    no_cpr(str(event.get("unclassified_reason") or ""))


@settings(FUZZ, max_examples=100)
@given(doc=st.sampled_from(ENVELOPES).flatmap(mutated_json),
       kombit=mutated_kombit(), suffix=st.sampled_from([".json", ".xml", ".jsonl"]))
def test_envelope_ingest_reports_every_message_it_cannot_convert(doc: Any, kombit: bytes,
                                                                 suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        (folder / f"a{suffix}").write_bytes(dumps(doc))
        (folder / "b.xml").write_bytes(kombit)
        summary = ingest_envelopes(folder, out=Path(tmp) / "events.jsonl", key=KEY)
    assert summary.records >= 1  # the XML message at least (a JSON list may be empty)
    assert summary.events + len(summary.errors) == summary.records  # nothing silently lost
    for line in summary.lines():
        no_cpr(line)


# --- DAWA replication --------------------------------------------------------------------------

def seeded_book() -> AddressBook:
    book = AddressBook()
    for record in DAR_EXTRACT:
        book.add(record)
    return book


@FUZZ
@given(doc=st.sampled_from([DAWA, DAR_STREAM]).flatmap(mutated_json), jsonl=st.booleans())
def test_damaged_replication_events_are_events_problems_or_a_named_error(doc: Any,
                                                                         jsonl: bool) -> None:
    data = (b"\n".join(dumps(e) for e in doc) if jsonl and isinstance(doc, list)
            else dumps(doc))
    try:
        events = read_replication_file(data)
    except ValueError as exc:
        assert str(exc)
        return
    book = seeded_book()
    for event in convert_replication(events, book):
        assert event["source"] == "dar" and isinstance(event["address_id"], str)
        datetime.fromisoformat(event["registered_at"])
    assert all(isinstance(p, str) for p in book.problems)


@settings(FUZZ, max_examples=100)
@given(doc=st.sampled_from([DAWA, DAR_STREAM]).flatmap(mutated_json),
       junk=st.sampled_from([None, b"\xff\xfe{", b"[1, 2", b"{\"a\": 1}\n[", b""]))
def test_dar_ingest_of_a_damaged_file_reports_instead_of_raising(doc: Any,
                                                                 junk: bytes | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replication.json"
        path.write_bytes(dumps(doc) if junk is None else junk)
        summary = ingest_dar_replication(path, out=Path(tmp) / "events.jsonl")
        written = (Path(tmp) / "events.jsonl").read_bytes().splitlines() \
            if (Path(tmp) / "events.jsonl").exists() else []
    assert summary.events == len(written)


def dawa_service(latest: Any, rows: Any) -> httpx.MockTransport:
    """A DAWA-compatible replication service answering ``latest`` to senestetransaktion and
    ``rows`` (raw JSON) to every udtræk and hændelser request."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("senestetransaktion"):
            return httpx.Response(200, content=dumps(latest))
        return httpx.Response(200, content=rows)
    return httpx.MockTransport(handler)


@settings(FUZZ, max_examples=100)
@given(latest=st.one_of(JSON_VALUE, st.builds(lambda v: {"txid": v}, JSON_VALUE),
                        st.just({"txid": 9500})),
       rows=st.lists(st.sampled_from(DAR_STREAM).flatmap(mutated_json), max_size=3))
def test_the_dar_poller_counts_a_poison_answer_as_a_failed_round(latest: Any,
                                                                 rows: list[Any]) -> None:
    async def poll(out: Path) -> Any:
        return await poll_dar("http://dawa.test", out=out, rounds=2, interval=0,
                              transport=dawa_service(latest, b"\n".join(dumps(r) for r in rows)))

    with tempfile.TemporaryDirectory() as tmp:
        summary = asyncio.run(poll(Path(tmp) / "events.jsonl"))
    assert summary.rounds == 2
    assert all(isinstance(p, str) for p in summary.problems)


# --- ATP / UDK records -------------------------------------------------------------------------

ATP_CPR = UDK_AFTER["cpr"]
POLLED = datetime(2024, 5, 1, 12, tzinfo=UTC)


@FUZZ
@given(before=st.sampled_from([UDK_BEFORE, None]), after=mutated_json(UDK_AFTER))
def test_a_damaged_udk_record_gives_valid_events_or_a_counted_failure(before: Any,
                                                                      after: Any) -> None:
    async def fetch(cpr: str) -> Any:
        return after

    state = {ATP_CPR: before} if before is not None else {}
    poller = AtpPoller(fetch, lambda: [ATP_CPR], state, 0, clock=lambda: POLLED)
    events = asyncio.run(poller.poll_once())
    stats = poller.stats
    assert stats.fetched + stats.failures + stats.not_found == 1
    if stats.failures or stats.not_found:
        assert events == [] and state.get(ATP_CPR) is before  # nothing invented, state kept
    for event in events:
        parsed = parse_event(orjson.dumps(event))
        assert not isinstance(parsed, InvalidEvent), parsed.error


# --- regressions: the crashes the fuzzing found --------------------------------------------------

def _extract(*records: str) -> bytes:
    lines = ["000".ljust(35), *records, "999" + " " * 10 + str(len(records)).rjust(8)]
    return ("\n".join(lines) + "\n").encode("latin-1")


def test_a_superscript_digit_in_the_end_records_count_is_an_error_not_a_crash() -> None:
    """'²' (latin-1 0xB2) passes str.isdigit() but int() refuses it: TAELLER "       ²" once
    raised ValueError out of read_extract."""
    data = ("000".ljust(35) + "\n" + "999" + " " * 10 + "²".rjust(8) + "\n").encode("latin-1")
    items = list(read_extract_stream(io.BytesIO(data)))
    errors = [str(i) for i in items if isinstance(i, ExtractError)]
    assert errors == ["line 2: end record 999: TAELLER is not a number"]


def test_a_superscript_digit_in_a_numeric_field_is_an_error() -> None:
    """Numeric fields hold digits or blanks: '²' in KOMKOD was accepted as a digit."""
    record = ("002" + "0101901234" + "²".rjust(4, "0") + "0001").ljust(306)
    items = list(read_extract_stream(io.BytesIO(_extract(record))))
    [error] = [i for i in items if isinstance(i, ExtractError)]
    assert error.line_number == 2 and "KOMKOD" in error.message and "not numeric" in error.message
    no_cpr(str(error))


def test_a_kombit_message_declaring_an_entity_is_an_envelope_error() -> None:
    """An internal DTD entity stays an unresolved reference (entities are never expanded), and
    lxml's schema validation then raised XMLSchemaValidateError ("Internal error") out of
    parse_kombit, which stopped `triage ingest envelope`."""
    body = KOMBIT[0].split(b"?>", 1)[1].replace(b"urn:oio:cpr-nr:2204151234", b"&e;")
    data = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "urn:oio:cpr-nr:0101901234">]>' + body
    with pytest.raises(EnvelopeError, match="DOCTYPE") as caught:
        parse_kombit(data, key=KEY)
    no_cpr(str(caught.value))


def test_a_dashed_cpr_number_in_an_invalid_kombit_element_is_masked() -> None:
    """lxml's schema error echoes the element's value; DDMMYY-SSSS was not masked."""
    data = KOMBIT[0].replace(b"2016-03-13T08:00:00", b"010190-1234")
    with pytest.raises(EnvelopeError, match="xs:dateTime") as caught:
        parse_kombit(data, key=KEY)
    assert "010190-****" in str(caught.value)
    no_cpr(str(caught.value))


@pytest.mark.parametrize("person", [
    {"civil_status": ["G"]},  # unhashable: `in frozenset` raised TypeError
    {"civil_status": {"G": 1}},
])
async def test_a_lookup_with_a_civil_status_of_the_wrong_type_is_unclassified(
        person: dict[str, Any]) -> None:
    marriage = next(d for d in ENVELOPES if "A19" in json.dumps(d))

    async def lookup(cpr: str) -> dict[str, Any]:
        return {"cpr": cpr, **person}

    event = await convert_envelope(marriage, lookup)
    assert event["type"] == "cpr_event_A19"
    assert event["unclassified_reason"] == "lookup has no usable civil status"


async def test_a_lookup_whose_parents_are_no_list_is_read_without_a_crash() -> None:
    """``"parents": 5`` raised TypeError (int is not iterable) converting a KOMBIT birth: it is
    no parent, so the birth is raised unclassified; one number without a list is that parent."""
    birth = parse_kombit(KOMBIT[0], key=KEY)
    assert birth.person_data is not None
    garbage = replace(birth, person_data={**birth.person_data, "parents": 5})
    event = await convert_envelope(garbage, _no_lookup)
    assert event["type"] == "cpr_event_UNKNOWN"
    assert event["unclassified_reason"].startswith("no parent known")
    one = replace(birth, person_data={**birth.person_data, "parents": "0101901234"})
    event = await convert_envelope(one, _no_lookup)
    assert event["type"] == "child_added" and event["parents"] == ["0101901234"]


async def test_a_lookup_status_shaped_like_a_cpr_number_is_not_echoed() -> None:
    """The reason quoted the lookup's status as it came: a register answering a PNR (or any
    ten digits) there put it in clear into the event."""
    death = next(d for d in ENVELOPES if "A21" in json.dumps(d))

    async def lookup(cpr: str) -> dict[str, Any]:
        return {"cpr": cpr, "status": "0101901234"}

    event = await convert_envelope(death, lookup)
    assert event["type"] == "cpr_event_A21"
    assert "status 010190-****, not 90" in event["unclassified_reason"]


@pytest.mark.parametrize("doc", [
    {"beskedID": "m1", "Beskedkuvert": "x"},
    {"beskedID": "m1", "Beskedkuvert": ["x"]},
    {"beskedID": "m1", "Beskedkuvert": {"Filtreringsdata": 5}},
    {"beskedID": "m1", "Beskedkuvert": {"Filtreringsdata": {"Objektregistrering": ["x"]}}},
    {"beskedID": "m1", "Beskedkuvert": {"Filtreringsdata": {"Objektregistrering": [[1]]}}},
    {"beskedID": "m1", "Beskedkuvert": {"Leveranceinformation": "x"}},
])
def test_a_json_envelope_part_that_is_no_object_is_an_envelope_error(doc: dict[str, Any],
                                                                     ) -> None:
    """A Beskedkuvert, Filtreringsdata, Objektregistrering or Leveranceinformation that is a
    string, number or list once raised AttributeError (and stopped `triage ingest envelope`)."""
    with pytest.raises(EnvelopeError):
        parse_envelope(doc)


def test_a_deeply_nested_json_envelope_is_an_envelope_error() -> None:
    """orjson reads 1,000 levels; normalising them recursively raised RecursionError."""
    deep = b'{"beskedID": "m1", "x": ' + b'{"a": ' * 900 + b"1" + b"}" * 901
    with pytest.raises(EnvelopeError, match="nested too deeply"):
        parse_envelope(deep)


@pytest.mark.parametrize("tidspunkt", ["garbage", None, 17, "2023-13-01T00:00:00Z"])
def test_a_replication_event_with_a_bad_tidspunkt_is_a_problem_not_a_crash(tidspunkt: Any,
                                                                          ) -> None:
    """An update whose tidspunkt is missing or not ISO 8601 raised ValueError out of
    convert_replication: `triage ingest dar-replication` died, and the poller retried the same
    round for ever. It is a problem naming txid and sekvensnummer, and the stream goes on."""
    good, bad = copy.deepcopy(DAR_STREAM[1]), copy.deepcopy(DAR_STREAM[1])
    bad["tidspunkt"] = tidspunkt
    good["txid"] += 1
    good["sekvensnummer"] += 1
    good["data"]["husnr"] = "99"
    book = seeded_book()
    events = list(convert_replication([bad, good], book))
    assert [e["sekvensnummer"] for e in events] == [good["sekvensnummer"]]
    [problem] = book.problems
    assert f"txid {bad['txid']} sekvensnummer {bad['sekvensnummer']}" in problem
    assert "tidspunkt" in problem


@pytest.mark.parametrize("answer", [[], "9500", {"txid": "9500"}, {"txid": None}, {"txid": 1.5}])
async def test_a_senestetransaktion_answer_without_an_integer_txid_is_a_failed_round(
        answer: Any, tmp_path: Path) -> None:
    """``{"txid": "9500"}`` once raised TypeError (str <= int) out of `triage poll-dar` on its
    second round, and a list raised TypeError on the first."""
    summary = await poll_dar("http://dawa.test", out=tmp_path / "events.jsonl", rounds=2,
                             interval=0, transport=dawa_service(answer, b""))
    assert (summary.rounds, summary.failures) == (2, 2)


async def test_the_dar_poller_goes_past_an_event_with_a_bad_tidspunkt(tmp_path: Path) -> None:
    """A poison event no longer stalls the poller: the round completes, the problem is listed
    and the position advances."""
    asked = []
    bad = {**DAR_STREAM[1], "txid": 2, "tidspunkt": "not a time"}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("senestetransaktion"):
            asked.append(path)
            return httpx.Response(200, json={"txid": 1 if len(asked) == 1 else 2})
        if path.endswith("udtraek"):
            rows = DAR_EXTRACT if request.url.params["entitet"] == "adresse" else []
            return httpx.Response(200, json=rows)
        rows = [bad] if request.url.params["entitet"] == "adresse" else []
        return httpx.Response(200, json=rows)

    state = tmp_path / "state.json"
    summary = await poll_dar("http://dawa.test", out=tmp_path / "events.jsonl", rounds=3,
                             interval=0, state_path=state,
                             transport=httpx.MockTransport(handler))
    assert summary.failures == 0
    assert any("tidspunkt" in p for p in summary.problems)
    assert json.loads(state.read_text())["txid"] == 2


@pytest.mark.parametrize("amount", [10**400, "nan", "inf", float("nan"), float("-inf"), "1e999"])
def test_an_amount_beyond_float_or_not_finite_is_a_malformed_record(amount: Any) -> None:
    """json reads 10**400 as an int that float() refuses with OverflowError, which escaped the
    poller's round; NaN compared unequal to itself and re-reported the benefit as changed every
    round; neither can be written as an event's amount."""
    record = {"cpr": ATP_CPR, "benefits": [{"benefit": "folkepension", "amount": amount,
                                            "period_from": "2024-01-01"}]}
    with pytest.raises(ValueError, match="amount"):
        diff_udk(None, record, cpr=ATP_CPR, polled_at=POLLED)

    async def fetch(cpr: str) -> Any:
        return record

    poller = AtpPoller(fetch, lambda: [ATP_CPR], {}, 0, clock=lambda: POLLED)
    assert asyncio.run(poller.poll_once()) == []
    assert poller.stats.failures == 1
