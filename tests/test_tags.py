"""Tags as canonical JSON text (issue #27): `tag_values` equals a dict lookup on every row,
whatever the keys and values hold; the bulk builders write exactly `json.dumps`' text."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from walkcover.config.tags import (
    TAG_DTYPE,
    merge_tag_texts,
    tag_column,
    tag_dicts,
    tag_text,
    tag_texts,
    tag_texts_from_pairs,
    tag_values,
)

#: Keys that trip a naive search: prefixes and suffixes of each other, regular-expression
#: metacharacters, JSON escapes, separators, CJK, emoji, control characters.
HOSTILE_KEYS = [
    "name",
    'a"name',
    "a\\name",
    "old_name",
    "name:en",
    "name:zh",
    "ame",
    "a.b",
    "aXb",
    "x(y)",
    "*",
    "+",
    "?",
    "[a]",
    "^",
    "$",
    "|",
    "\\",
    "\\d",
    '"',
    'na"me',
    "{",
    "}",
    ", ",
    ": ",
    ",name",
    ":name",
    "}name",
    ', "name',
    ': "',
    '", "name": "',
    '": "',
    "名称",
    "😀",
    "k\n",
    "\t",
    "\x01",
    "\x7f",
    "\u2028",
    "",
    " ",
    "building",
    "building:levels",
]
#: Values likewise, including other keys' text and the separators.
HOSTILE_VALUES = [
    "",
    "x",
    ", ",
    "name, ",
    '"',
    "\\",
    "\\\\",
    '\\"',
    '", "name": "evil',
    ", ",
    ": ",
    "{",
    "}",
    '{"name": "x"}',
    "name",
    '"name": "',
    "a, b: c",
    "郑州市第一中学",
    "😀🏫",
    "line\nbreak",
    "\x00\x1f",
    "tab\there",
    "\u2028\u2029",
    "%20%",
    "%4e2d%",
    " ",
    "ends with backslash\\",
]


def _cases(seed: int, n: int) -> list[dict[str, str]]:
    """Random dicts of hostile keys and values (seeded)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(0, 8)
        keys = rng.sample(HOSTILE_KEYS, k)
        out.append({key: rng.choice(HOSTILE_VALUES) for key in keys})
    # a key's text inside another key's value, and every key with every value once
    out.append({"old_name": '", "name": "fake', "note": '{"name": "fake"}'})
    out.append({"name": "real", "old_name": '", "name": "fake'})
    out += [{k: v} for k in HOSTILE_KEYS for v in HOSTILE_VALUES[:4]]
    return out


def _pairs() -> list[dict[str, str]]:
    """Every two hostile keys together, with values that end in a separator or a quote."""
    return [
        {a: v, b: w}
        for a in HOSTILE_KEYS
        for b in HOSTILE_KEYS
        for v, w in ((", ", ", "), ('"', ": "), ("\\", "}"))
        if a != b
    ]


def _as_objects(series: pd.Series) -> list[str | None]:
    return [None if pd.isna(v) else v for v in series]


@pytest.mark.parametrize("seed", [*range(5), "pairs"])
def test_tag_values_equal_a_dict_lookup_on_every_row(seed):
    dicts = _pairs() if seed == "pairs" else _cases(seed, 400)
    texts = tag_texts(dicts)
    assert texts.dtype == TAG_DTYPE
    for key in [*HOSTILE_KEYS, "not_there", "name:e", "ame:en"]:
        got = tag_values(texts, key)
        assert got.dtype == TAG_DTYPE
        assert _as_objects(got) == [d.get(key) for d in dicts], repr(key)


def test_tag_text_is_json_dumps_sorted_not_ascii():
    for d in _cases(11, 300):
        assert tag_text(d) == json.dumps(d, ensure_ascii=False, sort_keys=True)
        assert json.loads(tag_text(d)) == d
    assert tag_text(None) == tag_text({}) == "{}"
    # missing values left out, every value and key as text
    assert tag_text({"a": None, "b": float("nan"), "c": 3, 4: "d", "e": pd.NA}) == (
        '{"4": "d", "c": "3"}'
    )


def test_tag_values_keep_the_index_and_read_missing_rows_as_no_tags():
    texts = pd.Series(
        [tag_text({"name": "a"}), np.nan, tag_text({"name": "c"})], index=[7, 3, 7], dtype="str"
    )
    got = tag_values(texts, "name")
    assert list(got.index) == [7, 3, 7]
    assert _as_objects(got) == ["a", None, "c"]
    assert tag_dicts(texts) == [{"name": "a"}, None, {"name": "c"}]
    assert len(tag_values(pd.Series([], dtype="str"), "name")) == 0
    assert tag_dicts(pd.Series([], dtype="str")) == []


def test_tag_values_refuse_dicts():
    with pytest.raises(TypeError, match="tag_texts"):
        tag_values(pd.Series([{"name": "a"}], dtype=object), "name")


@pytest.mark.parametrize("seed", range(3))
def test_texts_from_pairs_are_the_texts_of_the_dicts(seed):
    dicts = _cases(100 + seed, 300)
    rng = random.Random(seed)
    pairs = [(i, k, v) for i, d in enumerate(dicts) for k, v in d.items()]
    rng.shuffle(pairs)  # in any order: sorted by feature and key
    rows = np.array([p[0] for p in pairs], dtype=np.int64)
    got = tag_texts_from_pairs(
        rows, pa.array([p[1] for p in pairs]), pa.array([p[2] for p in pairs]), n_rows=len(dicts)
    )
    assert got.to_pylist() == [tag_text(d) for d in dicts]


def test_tag_dicts_and_merge():
    dicts = _cases(7, 200)
    assert tag_dicts(tag_texts(dicts)) == dicts
    a, b = tag_text({"name": "x", "amenity": "toilets"}), tag_text({"name": "y", "fee": "no"})
    assert merge_tag_texts([a, b]) == tag_text({"name": "y", "amenity": "toilets", "fee": "no"})


def test_tag_column_is_read_once_per_frame():
    frame = pd.DataFrame({"tags": tag_texts([{"a": "1"}, {"b": "2"}])})
    first = tag_column(frame, "a")
    assert tag_column(frame, "a") is first
    assert _as_objects(first) == ["1", None]
    other = pd.DataFrame({"tags": tag_texts([{"a": "9"}])})
    assert _as_objects(tag_column(other, "a")) == ["9"]
