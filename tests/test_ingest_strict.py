"""SPEC §2.6 strict JSON and depth, through ingest; and what DuckDB 2.0.1 itself accepts.

DuckDB's JSON functions (json_valid, json_keys, json_extract) accept NaN, Inf and
Infinity in any case and with a minus sign, and trailing commas in objects and arrays, at
any depth; they refuse comments, single quotes, leading zeros, `+1`, `.5`, `1.`, hex, bare
words, unquoted keys, invalid escapes and raw control characters in strings. They accept
any depth (50,000 levels parse). forensics closes the accepted gaps itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.ingest import IngestTuning
from forensics.ingest.readers.json_lines import lines_to_arrow, nesting_brackets, newlines
from forensics.ingest.readers.json_split import MAX_DEPTH
from forensics.mapping import load_mapping
from tests.helpers.ingest import event, rows, run

DUCKDB_ACCEPTS = [
    '{"a":NaN}',
    '{"a":-NaN}',
    '{"a":nan}',
    '{"a":nAn}',
    '{"a":Infinity}',
    '{"a":-Infinity}',
    '{"a":infinity}',
    '{"a":Inf}',
    '{"a":-Inf}',
    '{"a":INF}',
    '{"a":iNf}',
    '{"a":1,}',
    '{"a":[1,]}',
    '{"a":{},}',
    '{"a":[1,{"b":Inf}]}',
]
DUCKDB_REFUSES = [
    '{"a":1}//c',
    '{"a":/*c*/1}',
    "{'a':1}",
    "{\"a\":'x'}",
    '{"a":01}',
    '{"a":-01}',
    '{"a":0x10}',
    '{"a":+1}',
    '{"a":.5}',
    '{"a":1.}',
    '{"a":1e}',
    '{"a":True}',
    '{"a":None}',
    '{"a":undefined}',
    "{a:1}",
    '{"a":"\\x41"}',
    '{"a":"tab\there"}',
    '{"a":[1,,2]}',
    '{"a":+Inf}',
    '{"a":Infinityy}',
]


@pytest.mark.parametrize("text", DUCKDB_ACCEPTS)
def test_duckdb_accepts_these_non_standard_texts(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    con = duckdb.connect()
    assert con.execute("select json_valid($t), json_keys($t)", {"t": text}).fetchone() == (
        True,
        ["a"],
    )


@pytest.mark.parametrize("text", DUCKDB_REFUSES)
def test_duckdb_refuses_these(text: str) -> None:
    assert duckdb.connect().execute("select json_valid($t)", {"t": text}).fetchone() == (False,)


def test_duckdb_parses_any_depth() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    assert duckdb.connect().execute("select json_valid($t)", {"t": deep}).fetchone() == (True,)


def _with(extra: str, rid: str = "r") -> str:
    """A valid event line with `extra` spliced in as the value of field x."""
    return json.dumps(event(request_id=rid))[:-1] + f', "x": {extra}}}'


NON_STANDARD_VALUES = [
    "NaN",
    "-nan",
    "Inf",
    "-INF",
    "infinity",
    "[1, Inf]",
    '{"y": [1, {"z": -Infinity}]}',
    "[1,]",
    '{"y": 1,}',
    "[ 1 , ]",
]
STANDARD_LOOKALIKES = [
    '"NaN"',
    '"Inf, ]"',
    '"a,}"',
    '{"info": "nan"}',
    '["inf", "Infinity"]',
    "null",
    '{"n": null, "i": [1, -1e5]}',
    '"\\"NaN\\""',
    '"x\\\\", "y": "Inf"',
]


@pytest.mark.parametrize("value", NON_STANDARD_VALUES)
def test_non_standard_token_at_any_depth_rejects_the_line(tmp_path: Path, value: str) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text(_with(value, "bad") + "\n" + _with("1", "good") + "\n")
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.rows_loaded, r.rows_rejected) == (1, 1)
    assert rows(db, "select source_record, reason from rejects") == [
        (1, "not standard JSON (NaN, Infinity or a trailing comma)")
    ]


@pytest.mark.parametrize("value", STANDARD_LOOKALIKES)
def test_standard_json_that_looks_like_it_is_loaded(tmp_path: Path, value: str) -> None:
    f = tmp_path / "e.jsonl"
    f.write_text(_with(value) + "\n")
    r = run(tmp_path / "s.duckdb", f).files[0]
    assert (r.rows_loaded, r.rows_rejected) == (1, 0)


@pytest.mark.parametrize("value", NON_STANDARD_VALUES + ["NaN"])
def test_non_standard_token_in_an_array_fails_the_file(tmp_path: Path, value: str) -> None:
    good = json.dumps(event(request_id="good"))
    f = tmp_path / "e.json"
    f.write_text(f"[{good}, {_with(value, 'bad')}]")
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert r.status == "failed" and "element 2" in (r.error or "")
    assert rows(db, "select count(*) from events") == [(0,)]


@pytest.mark.parametrize("element", ["NaN", "-Infinity", "[1,]", "01", "'x'"])
def test_non_standard_element_itself_fails_the_array(tmp_path: Path, element: str) -> None:
    f = tmp_path / "e.json"
    f.write_text(f"[{json.dumps(event())}, {element}]")
    r = run(tmp_path / "s.duckdb", f).files[0]
    assert r.status == "failed" and "element 2" in (r.error or "")


@pytest.mark.parametrize(
    "element, fails",
    [
        (b'{"\xb9":"0",}', True),  # a trailing comma, and a key that is not UTF-8
        (b'{"k":"0", "x": NaN, "\xb9":1}', True),
        (b"\xe9", True),  # a lone byte: not JSON either
        (b'{"ts":"2024-02-16T09:00:00Z","action":"x","user_id":"u\xe9"}', False),
    ],
)
def test_an_element_not_utf8_is_still_held_to_strict_json(
    tmp_path: Path, element: bytes, fails: bool
) -> None:
    # Before, the first three were rejected as `invalid UTF-8` and the file loaded: the
    # strictness check skipped elements that were not UTF-8.
    good = json.dumps(event(request_id="good")).encode()
    f = tmp_path / "e.json"
    f.write_bytes(b"[" + good + b",\n" + element + b"\n]")
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    if fails:
        assert r.status == "failed" and "element 2 of the array is" in (r.error or "")
        assert rows(db, "select count(*) from events") == [(0,)]
    else:
        assert (r.status, r.rows_loaded, r.rows_rejected) == ("loaded", 1, 1)
        assert rows(db, "select reason from rejects") == [("invalid UTF-8",)]


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_depth_limit_in_lines_on_both_sides(tmp_path: Path, suffix: str) -> None:
    at_limit = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # the record itself is level 1
    over = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    in_string = json.dumps("[" * 500)
    many_flat = "[" + ",".join(["[]"] * 300) + "]"
    f = tmp_path / f"e.{suffix}"
    lines = [_with(at_limit, "a"), _with(over, "b"), _with(in_string, "c"), _with(many_flat, "d")]
    f.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.rows_loaded, r.rows_rejected) == (3, 1)
    assert rows(db, "select source_record, reason from rejects") == [(2, "nested too deep")]


def test_depth_limit_in_arrays_rejects_the_element(tmp_path: Path) -> None:
    over = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    f = tmp_path / "e.json"
    f.write_text(f"[{_with('1', 'a')}, {_with(over, 'b')}, {_with('[[1]]', 'c')}]")
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.status, r.rows_loaded, r.rows_rejected) == ("loaded", 2, 1)
    assert rows(db, "select source_record, reason from rejects") == [(2, "nested too deep")]


def test_a_flat_batch_skips_the_depth_check(tmp_path: Path) -> None:
    lines, _ = lines_to_arrow(b'{"a":1}\n{"b":[2]}\n', 0, 18, 1, 4096)
    assert not lines.maybe_deep
    deep = b'{"a":' + b"[" * 200 + b"]" * 200 + b"}\n"
    lines, _ = lines_to_arrow(deep, 0, len(deep), 1, 4096)
    assert lines.maybe_deep
    # Blank and non-object lines hold no bracket: they must not hide a deep record.
    hidden = b"\n" * 300 + b"[]\n" * 50 + b"[" * 129 + b"]" * 129 + b"\n"
    lines, _ = lines_to_arrow(hidden, 0, len(hidden), 1, 4096)
    assert lines.maybe_deep


@given(
    text=st.text(alphabet="{[]}a \r\n", max_size=300),
    before=st.text(alphabet="{[\n", max_size=5),
    block=st.integers(1, 64),
)
def test_nesting_brackets_counts_what_bytes_count_would(text: str, before: str, block: int) -> None:
    # The brackets beyond each line's opening `{`, for a piece of a larger buffer (as a
    # chunk's lines are cut), counted in NumPy blocks of any size: the same as the plain
    # count of every `{` and `[` less the `{` that follow a newline or open the piece.
    body = (text + "\n").encode()
    buf = before.encode() + body + b"{[tail"
    start, stop = len(before), len(before) + len(body)
    nl = newlines(buf, start, stop, block)
    line_starts = np.concatenate(([start], nl[:-1] + 1)).astype(np.int64)
    plain = (
        buf.count(b"{", start, stop)
        + buf.count(b"[", start, stop)
        - buf.count(b"\n{", start, stop)
        - (buf[start : start + 1] == b"{")
    )
    assert nesting_brackets(buf, start, stop, line_starts, block) == plain


def test_a_deep_record_among_blank_lines_is_rejected(tmp_path: Path) -> None:
    over = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    f = tmp_path / "e.jsonl"
    f.write_text("\n" * 300 + _with(over, "deep") + "\n")
    db = tmp_path / "s.duckdb"
    assert run(db, f).files[0].rows_rejected == 1
    assert rows(db, "select reason from rejects") == [("nested too deep",)]


# ------------------------------------------------------------ wrapped documents


def _events(n: int, prefix: str = "r") -> list[dict[str, object]]:
    return [event(request_id=f"{prefix}{i}") for i in range(n)]


def test_wrapped_document_by_inference(tmp_path: Path) -> None:
    f = tmp_path / "trail.json"
    f.write_text(json.dumps({"Records": _events(3)}, indent=2))
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.status, r.kind, r.rows_loaded) == ("loaded", "events", 3)
    assert rows(db, "select source_record, request_id from events order by 1") == [
        (1, "r0"),
        (2, "r1"),
        (3, "r2"),
    ]


def test_wrapped_document_named_by_the_map(tmp_path: Path) -> None:
    m = tmp_path / "m.toml"
    m.write_text('[events]\nrecords = "Records"\n')
    f = tmp_path / "trail.json"
    f.write_text(json.dumps({"Next": "x", "Records": _events(2), "Count": 2}))
    db = tmp_path / "s.duckdb"
    r = run(db, f, mapping=load_mapping(m)).files[0]
    assert (r.status, r.rows_loaded) == ("loaded", 2)
    # Without the map, an object with three members is not a wrapped document: it is one
    # JSON line, which has no event fields.
    r = run(tmp_path / "t.duckdb", f, kind="events").files[0]
    assert (r.rows_read, r.rows_rejected) == (1, 1)


def test_a_pretty_printed_document_of_several_members_fails_naming_the_way_out(
    tmp_path: Path,
) -> None:
    # Read as JSON lines, every line of it was rejected and the file was "loaded".
    f = tmp_path / "trail.json"
    f.write_text(json.dumps({"Records": _events(2), "nextToken": None}, indent=2))
    r = run(tmp_path / "s.duckdb", f).files[0]
    assert r.status == "failed"
    assert "one object over several lines holding an array of records" in (r.error or "")
    assert "records =" in (r.error or "")
    m = tmp_path / "m.toml"
    m.write_text('[events]\nrecords = "Records"\n')
    r = run(tmp_path / "t.duckdb", f, mapping=load_mapping(m)).files[0]
    assert (r.status, r.rows_loaded) == ("loaded", 2)
    # The array needs not come first; a document without one is read as before.
    f.write_text(json.dumps({"nextToken": None, "Records": _events(2)}, indent=2))
    r = run(tmp_path / "v.duckdb", f).files[0]
    assert r.status == "failed" and "records =" in (r.error or "")
    f.write_text('{\n"a" : "b"\n}\n')  # JSONTestSuite's y_object_with_newlines
    r = run(tmp_path / "w.duckdb", f, kind="events").files[0]
    assert (r.status, r.rows_read, r.rows_rejected) == ("loaded", 3, 3)
    # JSON lines whose first record is cut short are still JSON lines.
    g = tmp_path / "lines.json"
    g.write_text('{"ts": "2024-02-16T09:00:00Z", "action":\n' + json.dumps(event()) + "\n")
    r = run(tmp_path / "u.duckdb", g).files[0]
    assert (r.status, r.rows_read, r.rows_rejected) == ("loaded", 2, 1)


def test_a_one_line_document_of_several_members_fails_with_the_way_out_named(
    tmp_path: Path,
) -> None:
    # One line is a JSON line (a record of its own); the errors it then meets say how to
    # read it as a wrapped document, as `aws cloudtrail lookup-events` writes one.
    f = tmp_path / "lookup.json"
    f.write_text(json.dumps({"Events": _events(3), "NextToken": "x"}) + "\n")
    r = run(tmp_path / "s.duckdb", f).files[0]
    assert r.status == "failed" and "pass --kind" in (r.error or "")
    assert "name that member with records = in a map" in (r.error or "")
    m = tmp_path / "m.toml"
    m.write_text('[events]\nts = "when"\n')
    r = run(tmp_path / "t.duckdb", f, mapping=load_mapping(m), kind="events").files[0]
    assert "no record has the field when" in (r.error or "")
    assert "records = in a map" in (r.error or "")
    m.write_text('[events]\nrecords = "Events"\n')
    r = run(tmp_path / "u.duckdb", f, mapping=load_mapping(m)).files[0]
    assert (r.status, r.rows_loaded) == ("loaded", 3)
    # Two records: not one object, so no such hint. CSV has no records = to name.
    f.write_text('{"a": 1}\n{"a": 2}\n')
    m.write_text('[events]\nts = "when"\n')
    r = run(tmp_path / "v.duckdb", f, mapping=load_mapping(m), kind="events").files[0]
    assert "no record has the field when" in (r.error or "")
    assert "records =" not in (r.error or "")
    g = tmp_path / "x.csv"
    g.write_text("a,b\n1,2\n")
    r = run(tmp_path / "w.duckdb", g).files[0]
    assert "pass --kind" in (r.error or "") and "records =" not in (r.error or "")


def test_wrapped_document_with_a_bad_record_fails(tmp_path: Path) -> None:
    f = tmp_path / "trail.json"
    f.write_text('{"Records": [' + json.dumps(event()) + ', {"a": NaN}]}')
    r = run(tmp_path / "s.duckdb", f).files[0]
    assert r.status == "failed" and "element 2" in (r.error or "")
    f.write_text('{"Records": [' + json.dumps(event()) + ", ")
    r = run(tmp_path / "t.duckdb", f).files[0]
    assert r.status == "failed" and "not closed" in (r.error or "")


def test_json_lines_whose_first_record_has_one_array_member(tmp_path: Path) -> None:
    f = tmp_path / "e.json"
    first = {"tags": [1, 2]}
    f.write_text(json.dumps(first) + "\n" + "\n".join(json.dumps(e) for e in _events(2)) + "\n")
    db = tmp_path / "s.duckdb"
    r = run(db, f, kind="events").files[0]
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (3, 2, 1)
    assert rows(db, "select source_record from events order by 1") == [(2,), (3,)]


def test_a_surprise_after_the_peek_fails_the_file(tmp_path: Path) -> None:
    small = IngestTuning(chunk_bytes=64)  # the peek is one chunk's worth of bytes
    f = tmp_path / "e.json"
    f.write_text(json.dumps({"Records": _events(4)}) + "\n" + json.dumps(event()) + "\n")
    r = run(tmp_path / "s.duckdb", f, tuning=small).files[0]
    assert r.status == "failed" and "records = in the map" in (r.error or "")
    f.write_text(json.dumps({"Records": _events(4)}) + "\n")
    assert run(tmp_path / "t.duckdb", f, tuning=small).files[0].rows_loaded == 4
    # With the default chunk the whole file is peeked: it is JSON lines after all.
    f.write_text(json.dumps({"Records": _events(4)}) + "\n" + json.dumps(event()) + "\n")
    r = run(tmp_path / "u.duckdb", f, kind="events").files[0]
    assert (r.status, r.rows_read) == ("loaded", 2)


def test_cloudtrail_example_through_its_map(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent / "examples"
    db = tmp_path / "s.duckdb"
    report = run(
        db,
        root / "data" / "camera-audit-trail.json",
        mapping=load_mapping(root / "maps" / "cloudtrail.toml"),
    )
    r = report.files[0]
    assert (r.status, r.kind, r.rows_read, r.rows_loaded, r.rows_rejected) == (
        "loaded",
        "events",
        6,
        5,
        1,
    )
    assert r.reasons == {"missing event_id for an analysed action": 1}
    assert rows(
        db,
        "select source_record, strftime(ts, '%H:%M:%S'), action, user_id, device_id, "
        "event_id, request_id, status from events order by source_record",
    ) == [
        (1, "09:00:01", "thumbnail_delivered", "u-2", "cam-1", "ev-1", "evt-0001", 200),
        (2, "09:00:02", "thumbnail_tapped", "u-2", "cam-1", "ev-1", "evt-0002", 200),
        (3, "09:00:03", "video_played", "u-2", "cam-1", "ev-1", "evt-0003", 200),
        (4, "09:00:04", "thumbnail_delivered", "u-3", "cam-2", "ev-2", "evt-0004", 403),
        (5, "09:00:05", "GetProfile", "u-1", None, None, "evt-0005", 200),
    ]
    assert rows(db, "select source_record, reason from rejects") == [
        (6, "missing event_id for an analysed action")
    ]


# Tokens spliced into a valid event: non-standard ones (at the top level, nested, in a
# canonical field's value) and standard look-alikes, including the text of one in a string.
_SPLICED = st.sampled_from(
    NON_STANDARD_VALUES
    + STANDARD_LOOKALIKES
    + ["-Infinity", "[NaN]", '{"a": {"b": [inF]}}', "[[1],]", '"nan, }"', '["x",]', "200"]
)
_FIELDS = st.sampled_from(["x", "status", "ts", "event_id", "app"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.tuples(_FIELDS, _SPLICED, st.booleans()), min_size=1, max_size=8),
)
def test_counted_and_uncounted_keys_reject_the_same_non_standard_records(
    tmp_path_factory: pytest.TempPathFactory, lines: list[tuple[str, str, bool]]
) -> None:
    """Non-standard tokens and trailing commas spliced anywhere in an event, in canonical
    fields and others: the stage that counts a record's keys against the extracted values
    (no map, few keys) and the one that compares its keys with their distinct list reject
    the same records for the same reasons, and exactly the non-standard ones."""
    tmp = tmp_path_factory.mktemp("std")
    text = []
    for n, (field, value, trailing) in enumerate(lines):
        record = event(request_id=f"r{n}")
        record.pop(field, None)
        body = json.dumps(record)[:-1] + f', "{field}": {value}'
        text.append(body + (", }" if trailing else "}"))
    f = tmp / "e.jsonl"
    f.write_text("\n".join(text) + "\n")
    got = []
    for counted in (256, 0):
        db = tmp / f"s{counted}.duckdb"
        run(db, f, tuning=IngestTuning(max_counted_keys=counted))
        got.append(rows(db, "select source_record, reason from rejects order by 1"))
    assert got[0] == got[1]
    non_standard = {*NON_STANDARD_VALUES, "-Infinity", "[NaN]", '{"a": {"b": [inF]}}'}
    non_standard |= {"[[1],]", '["x",]'}
    expected = [
        n + 1 for n, (_, value, trailing) in enumerate(lines) if trailing or value in non_standard
    ]
    flagged = [r for r, why in got[0] if why.startswith("not standard JSON")]
    assert flagged == expected
