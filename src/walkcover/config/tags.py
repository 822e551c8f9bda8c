"""OSM tags as text: one canonical JSON object per feature, in an Arrow-backed string column.

The features of `walkcover.sources.OSMLayers` hold their tags in a ``tags`` column of pandas'
``str`` dtype (Arrow), each row the canonical text of the feature's tags (`tag_text`): keys
sorted, ``ensure_ascii=False``, JSON's default separators ``", "`` and ``": "``, every value a
string. That is the text the cache stores, so a cached entry is read as it lies on disk, with no
Python object per feature (a city's 552,000 dicts took 229 MB).

Consumers read the keys they need in bulk (`tag_values`, or `tag_column`, shared by every rule
that reads the same frame) and make whole dicts only for the few rows that need them
(`tag_dicts`).

This module sits in `walkcover.config` (the lowest layer that knows OSM tags) rather than in
`walkcover.sources`: the standards' selectors (`walkcover.config.standards.selector_masks`) read
tag columns too, and config may not import the sources above it.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

#: The dtype of a tag text or tag value column: pandas' ``str`` (Arrow-backed, NaN missing).
TAG_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
#: The canonical text of a feature without tags.
NO_TAGS = "{}"


def _missing(value: object) -> bool:
    """Whether a tag value is one of the spellings of "no value" (None, NaN, pandas' NA)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def tag_text(tags: Mapping[Any, object] | None) -> str:
    """The canonical text of one feature's tags.

    Parameters
    ----------
    tags
        Key to value; keys and values are written as text (``str``), missing values (None, NaN)
        are left out. None is no tags.

    Returns
    -------
    str
        ``json.dumps`` of the tags with sorted keys, ``ensure_ascii=False`` and the default
        separators: ``{"amenity": "toilets", "name": "公厕"}``.
    """
    if not tags:
        return NO_TAGS
    clean = {str(k): str(v) for k, v in tags.items() if not _missing(v)}
    return json.dumps(clean, ensure_ascii=False, sort_keys=True)


def tag_texts(dicts: Iterable[Mapping[Any, object] | None]) -> pd.Series:
    """`tag_text` of each of `dicts`, as a ``str`` column (for readers that make dicts a chunk at
    a time: osmnx, pyrosm)."""
    return pd.Series([tag_text(d) for d in dicts], dtype=TAG_DTYPE)


def tag_texts_from_pairs(rows: np.ndarray, keys: Any, values: Any, *, n_rows: int) -> Any:
    """The canonical texts of `n_rows` features from their tags as flat pairs, all at once.

    Parameters
    ----------
    rows
        The feature (0 … `n_rows` - 1) each pair belongs to.
    keys, values
        The pairs' keys and values as text (pyarrow string arrays, decoded: what the tags say,
        not escaped); one key at most once per feature.
    n_rows
        How many features; one with no pair gets ``{}``.

    Returns
    -------
    pyarrow.Array
        One canonical text per feature (`tag_text`), large strings: sorted by (feature, key) in
        Arrow, escaped and joined by its string kernels (a pair with a control character, which
        JSON writes as an escape, in Python).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = np.asarray(rows, dtype=np.int64)
    keys = pa.array(keys).cast(pa.large_string())
    values = pa.array(values).cast(pa.large_string())
    if len(rows):
        # keys sorted as Python sorts them: by code point, which UTF-8's byte order keeps
        table = pa.table({"row": rows, "key": keys})
        order = pc.sort_indices(table, sort_keys=[("row", "ascending"), ("key", "ascending")])
        rows, keys, values = rows[order.to_numpy()], keys.take(order), values.take(order)

    def text(s: str) -> Any:
        return pa.scalar(s, pa.large_string())

    pieces = pc.binary_join_element_wise(
        text('"'), _json_escaped(keys), text('": "'), _json_escaped(values), text('"'), text("")
    )
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=offsets[1:])
    grouped = pa.LargeListArray.from_arrays(pa.array(offsets), pieces)
    joined = pc.binary_join(grouped, text(", "))
    return pc.binary_join_element_wise(text("{"), joined, text("}"), text(""))


def _json_escaped(text: Any) -> Any:
    """Each string as JSON writes it between its quotes with ``ensure_ascii=False``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.replace_substring(text, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    control = pc.match_substring_regex(text, "[\\x00-\\x1f]")
    if pc.any(control).as_py():  # \n, \t … and \u00XX: few values hold one
        which = np.flatnonzero(control.to_numpy(zero_copy_only=False))
        written = [json.dumps(s, ensure_ascii=False)[1:-1] for s in text.take(which).to_pylist()]
        out = pc.replace_with_mask(out, control, pa.array(written, out.type))
    return out


def _arrow(tags: Any) -> Any:
    """A tag text column (a pandas Series or array, a pyarrow array) as a pyarrow large-string
    array or chunked array (null where missing). Without a copy when it is Arrow-backed (a
    cached layer's column comes in row groups: kept in its chunks)."""
    import pyarrow as pa

    if isinstance(tags, pa.Array | pa.ChunkedArray):
        arr = tags
    else:
        values = tags.array if isinstance(tags, pd.Series) else tags
        if isinstance(values, pd.arrays.ArrowStringArray):
            arr = pa.array(values)
        else:
            objects = np.asarray(values, dtype=object)
            bad = next((v for v in objects if not (isinstance(v, str) or _missing(v))), None)
            if bad is not None:
                raise TypeError(
                    f"tags must be canonical JSON text (walkcover.config.tags.tag_text), found a "
                    f"{type(bad).__name__}: convert dicts with tag_texts(dicts)"
                )
            arr = pa.array(objects, type=pa.large_string(), from_pandas=True)
    return arr.cast(pa.large_string())


def as_tag_texts(tags: Any) -> pd.Series:
    """A tag text column as a ``str`` (Arrow) Series aligned to `tags` (no copy when it is one
    already).

    Raises
    ------
    TypeError
        When a row holds a dict (or anything but text): make texts with `tag_texts` first.
    """
    if isinstance(tags, pd.Series) and tags.dtype == TAG_DTYPE:
        return tags
    return pd.Series(pd.array(_arrow(tags), dtype=TAG_DTYPE), index=_index(tags))


def texts_matching(tags: Any, pattern: str) -> np.ndarray:
    """Whether each row's tag text matches `pattern` (RE2, searched anywhere in the text; a
    missing row never matches), as a boolean array: a cheap first pass before reading rows."""
    import pyarrow.compute as pc

    arr = _arrow(tags)
    if not len(arr):
        return np.zeros(0, dtype=bool)
    found = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _index(tags: Any) -> pd.Index:
    return tags.index if isinstance(tags, pd.Series) else pd.RangeIndex(len(tags))


def _pattern_text(text: str) -> str:
    """`text` as an RE2 pattern matching it literally (ASCII letters and digits and every
    character beyond ASCII as they are, any other as ``\\x{..}``)."""
    return "".join(
        c if (c.isascii() and c.isalnum()) or not c.isascii() else f"\\x{{{ord(c):02x}}}"
        for c in text
    )


#: The characters of a JSON string (between its quotes), and a JSON string.
_CHARS = '(?:[^"\\\\]|\\\\.)*'
_STRING = f'"{_CHARS}"'


def tag_values(tags: Any, key: str) -> pd.Series:
    """The value of tag `key` in every row of a tag text column.

    Parameters
    ----------
    tags
        Canonical tag texts (`tag_text`): a features frame's ``tags`` column, or a pyarrow array;
        a missing row (NaN, None) has no tags.
    key
        The tag key, e.g. ``"building:levels"``.

    Returns
    -------
    pandas.Series
        ``str`` dtype, aligned to `tags` (its index): the value, NaN where the row has no such
        tag; equal to ``json.loads(text).get(key)`` for every row.

    Notes
    -----
    One regular expression (RE2) over the texts: ``(?:^\\{|, )"<key>": "(<value>)"``. In
    canonical JSON a quote after ``, `` is never escaped, so it opens a key, or closes a string
    that ends in ``, `` (``{"a": ", ", "b": "x"}``); what follows a closing quote is ``: ``, ``, ``
    or ``}``, so only a key whose JSON text starts with one of ``:,}`` can be found there by
    mistake. For those keys the expression walks the pairs from the text's ``{`` instead, string
    by string, up to the key (slower: only on the rows holding the key's text). A value holding a
    JSON escape (a quote, a backslash, a control character) is unescaped in Python: few rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _arrow(tags)
    escaped = json.dumps(str(key), ensure_ascii=False)[1:-1]
    wanted = f'"{_pattern_text(escaped)}": "(?P<v>{_CHARS})"'
    none = pa.scalar(None, pa.large_string())
    if escaped[:1] not in (":", ",", "}"):
        found = pc.extract_regex(arr, f"(?:^\\{{|, ){wanted}")
        values = pc.if_else(found.is_valid(), pc.struct_field(found, "v"), none)
    else:
        hit = pc.fill_null(pc.match_substring(arr, f'"{escaped}": "'), False)
        rows = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        found = pc.extract_regex(
            arr.take(pa.array(rows)), f"^\\{{(?:{_STRING}: {_STRING}, )*{wanted}"
        )
        some = pc.if_else(found.is_valid(), pc.struct_field(found, "v"), none)
        position = np.full(len(arr), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        values = some.take(pa.array(position, mask=position < 0))
    slashed = pc.fill_null(pc.match_substring(values, "\\"), False)
    if pc.any(slashed).as_py():
        which = np.flatnonzero(slashed.to_numpy(zero_copy_only=False))
        raw = values.take(pa.array(which)).to_pylist()
        plain = json.loads("[" + ",".join(f'"{v}"' for v in raw) + "]")
        if isinstance(values, pa.ChunkedArray):  # one column of one key: small
            values, slashed = values.combine_chunks(), slashed.combine_chunks()
        values = pc.replace_with_mask(values, slashed, pa.array(plain, pa.large_string()))
    return pd.Series(pd.array(values, dtype=TAG_DTYPE), index=_index(tags))


def tag_dicts(tags: Any) -> list[dict[str, str] | None]:
    """Whole dicts for a (small) selection of rows: one ``json.loads`` of their texts joined.

    For the consumer that truly needs every key of a few features (a facility's lifecycle tags,
    a school's level); a column of one key is `tag_values`. None where a row has no text (a
    planner's facility, which has no OSM tags).
    """
    arr = _arrow(tags)
    present = arr.is_valid().to_numpy(zero_copy_only=False)
    texts = arr.drop_null().to_pylist()
    parsed = iter(json.loads("[" + ",".join(texts) + "]"))
    return [next(parsed) if p else None for p in present]


def merge_tag_texts(texts: Iterable[str]) -> str:
    """One text of several of the same element's (found by several queries): the union of their
    tags, the later text's value winning for a key in two."""
    merged: dict[str, str] = {}
    for text in texts:
        if isinstance(text, str):
            merged.update(json.loads(text))
    return tag_text(merged)


#: Tag columns already read out of a features frame's ``tags`` text, per frame (by identity,
#: dropped with the frame): every standard, land use and barrier rule reads the same few keys of
#: the same frame, and one column per key per frame is enough.
_TAG_COLUMNS: dict[int, dict[str, pd.Series]] = {}


def tag_column(features: pd.DataFrame, key: str) -> pd.Series:
    """`tag_values` of `features`' ``tags`` for `key`, read once per frame and key (kept while
    the frame lives; a frame's tags are never edited in place)."""
    frame_id = id(features)
    if frame_id not in _TAG_COLUMNS:
        _TAG_COLUMNS[frame_id] = {}
        weakref.finalize(features, _TAG_COLUMNS.pop, frame_id, None)
    columns = _TAG_COLUMNS[frame_id]
    if key not in columns:
        columns[key] = tag_values(features["tags"], key)
    return columns[key]
