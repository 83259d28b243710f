"""The streamed JSON array splitter: elements, structure, depth, wrapped documents."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensics.errors import InputError
from forensics.ingest.readers.json_split import MAX_DEPTH, NotWrapped, iter_elements


def split(doc: str | bytes, size: int = 0, **kw: Any) -> list[tuple[int, str, str | None]]:
    data = doc.encode() if isinstance(doc, str) else doc
    size = size or max(1, len(data))
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)])
    out: list[tuple[int, str, str | None]] = []
    for b in iter_elements(chunks, **kw):
        out += zip(b.rec.tolist(), b.raw.to_pylist(), b.pre_err.to_pylist(), strict=True)
    return out


def values(doc: str, size: int = 0, **kw: Any) -> list[Any]:
    return [json.loads(raw) for _, raw, _ in split(doc, size, **kw)]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab,:[]{}"\\ \n\u00e9\u2028')),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet='ab"\\,]', max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=6), st.integers(1, 40), st.booleans())
def test_elements_equal_a_full_parse_for_any_chunking(
    items: list[Any], size: int, pretty: bool
) -> None:
    doc = json.dumps(items, indent=2 if pretty else None)
    assert values(doc, size) == items
    got = split(doc, size)
    assert [r for r, _, _ in got] == list(range(1, len(items) + 1))


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=5), st.integers(1, 30))
def test_wrapped_document_gives_its_array(items: list[Any], size: int) -> None:
    doc = json.dumps({"Records": items})
    assert values(doc, size, wrapped=True) == items
    assert values(doc, size, wrapped=True, records=frozenset({"Records"})) == items
    other = json.dumps({"meta": {"k": [1, {"x": "]"}]}, "Records": items, "n": 3})
    assert values(other, size, wrapped=True, records=frozenset({"Records"})) == items


@pytest.mark.parametrize("size", [0, 1, 3])
@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ("[1", "not closed"),
        ('[{"a":1}', "not closed"),
        ("[1,]", "trailing comma"),
        ("[1 , \n ]", "trailing comma"),
        ("[1] x", "content after"),
        ("[1] [2]", "content after"),
        ("[1}", "not closed where expected"),
        ('{"a":1}', "not a JSON array"),
        ("", "not a JSON array"),
        ("x[1]", "not a JSON array"),
    ],
)
def test_array_structure_errors_fail_the_file(doc: str, why: str, size: int) -> None:
    with pytest.raises(InputError, match=why):
        split(doc, size)


@pytest.mark.parametrize("size", [0, 1, 2])
def test_empty_arrays_and_whitespace(size: int) -> None:
    assert split("[]", size) == []
    assert split(" \n[ \n ]\n\n", size) == []
    assert split("\ufeff[1]", size) == [(1, "1", None)]


@pytest.mark.parametrize("size", [0, 5])
def test_depth_limit_on_both_sides(size: int) -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    nested_ok = '{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    got = split(f"[1,{ok},{deep},{nested_ok},2]", size)
    assert [e for _, _, e in got] == [None, None, "nested too deep", None, None]


def test_fifty_thousand_levels_never_recurse() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    assert [e for _, _, e in split(f"[{deep}]", 4096)] == ["nested too deep"]
    with pytest.raises(InputError, match="not closed"):
        split("[" * 100_000, 4096)


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_escapes_at_chunk_edges(size: int) -> None:
    doc = r'["a\\", "b\"]", "\\\"", "c\\\\"]'
    assert values(doc, size) == json.loads(doc)


def test_invalid_utf8_rejects_that_element() -> None:
    got = split(b'[{"a":"\xff"}, {"a":"ok"}]')
    assert [e for _, _, e in got] == ["invalid UTF-8", None]


def test_utf16_fails() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        split("[1]".encode("utf-16"))


@pytest.mark.parametrize("size", [0, 1, 4])
@pytest.mark.parametrize(
    "doc",
    [
        '{"a":[1]} {"b":[2]}',  # JSON lines whose first record has one array member
        '{"a":[1], "b":2}',  # more than one member
        '{"a":{"x":1}}',  # the member is not an array
        '{"a":1}',
        "{}",
        "[1]",
    ],
)
def test_not_a_wrapped_document(doc: str, size: int) -> None:
    with pytest.raises(NotWrapped):
        split(doc, size, wrapped=True)


def test_named_records_member_may_have_neighbours() -> None:
    doc = '{"Next": null, "Records": [{"a": 1}], "Count": 1}'
    assert values(doc, 3, wrapped=True, records=frozenset({"Records"})) == [{"a": 1}]
    with pytest.raises(NotWrapped):
        split(doc, 3, wrapped=True, records=frozenset({"Other"}))
    with pytest.raises(InputError, match="member of the document"):
        split('{"Next": NaN, "Records": [1]}', wrapped=True, records=frozenset({"Records"}))


@pytest.mark.parametrize("piece", [1, 2, 5])
def test_a_chunk_is_split_in_pieces_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch, piece: int
) -> None:
    import forensics.ingest.readers.json_split as ja

    doc = json.dumps([{"a": 'x,]\\"', "b": [1, {"c": None}]}, 2, "s", [], {}] * 3)
    expected = values(doc)
    monkeypatch.setattr(ja, "PIECE", piece)
    assert values(doc, 0) == values(doc, 7) == expected
    assert [r for r, _, _ in split(doc, 0)] == list(range(1, 16))
    with pytest.raises(InputError, match="content after"):
        split(doc + " 1", 0)
