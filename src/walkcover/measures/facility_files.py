"""Planners' own facility lists: CSV, Excel, GeoJSON, Shapefile or GeoPackage, in WGS84, GCJ-02,
BD-09 or any EPSG CRS, with Chinese column names recognised.

Nothing is imported half-way: every row is checked (coordinates present and numeric, latitude and
longitude not swapped, no consistent shift against OpenStreetMap that betrays GCJ-02 or BD-09 read
as WGS84, capacities that are numbers of places) before anything is written, and the file is
written atomically.

An optional capacity column (容量, 学位, 床位, capacity, beds, seats, places, or ``--capacity-col``)
gives each facility's places or beds, which E2SFCA access uses instead of OSM tags or the
standard's default. An empty cell gives none (the run falls back to the tag or default); ``0`` is
kept as a facility with no places (it still counts for coverage and choice but adds nothing to
access); any other cell that is not a number from 0 to `MAX_CAPACITY` refuses the whole import.
"""

from __future__ import annotations

import errno
import io
import math
import os
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import scipy
import shapely

from walkcover._errors import ConfigError, CRSError, WalkcoverError
from walkcover._escape import FORMULA_START, terminal
from walkcover.measures.access import MAX_CAPACITY, CapacityError, parse_capacity
from walkcover.sources import coords as cc

#: Column names recognised, first match wins (case-insensitive for Latin names).
ALIASES = {
    "name": [
        "名称",
        "名字",
        "设施名称",
        "点位名称",
        "公厕名称",
        "学校名称",
        "name",
        "title",
        "名称(name)",
    ],
    "lon": ["经度", "lon", "lng", "long", "longitude", "x", "经度(lng)", "gcj_lng", "bd_lng"],
    "lat": ["纬度", "lat", "latitude", "y", "纬度(lat)", "gcj_lat", "bd_lat"],
    "address": ["地址", "详细地址", "address", "addr"],
    "capacity": [
        "容量",
        "学位",
        "学位数",
        "核定学位",
        "床位",
        "床位数",
        "核定床位",
        "capacity",
        "beds",
        "seats",
        "places",
    ],
}
TABULAR = {".csv", ".txt", ".xlsx", ".xls"}


class FacilityFileError(WalkcoverError, ValueError):
    """A facility file that cannot be imported as it is; the message says what to pass."""


def imports_dir() -> Path:
    """Where imported facility lists live: ``WALKCOVER_DATA`` or ``~/.local/share/walkcover``."""
    base = os.environ.get("WALKCOVER_DATA") or str(Path.home() / ".local" / "share" / "walkcover")
    return Path(base) / "imports"


def imported_path(city_id: str, standard_id: str) -> Path:
    return imports_dir() / city_id / f"{standard_id}.gpkg"


#: Encodings a CSV is told apart between when it is not UTF-8: Chinese Excel saves GBK (GB18030
#: is its superset), Western Windows Excel saves Windows-1252.
FALLBACK_ENCODINGS = ("gb18030", "cp1252")


def detect_encoding(raw: bytes) -> str:
    """The text encoding of a CSV's bytes: UTF-8 (with or without BOM) when it decodes as such,
    else the more likely of `FALLBACK_ENCODINGS` (charset-normalizer, which weighs how plausible
    the decoded text is: Windows-1252 "Café" would read as GB18030 "Caf"+an unlikely ideograph).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw, cp_isolation=list(FALLBACK_ENCODINGS)).best()
    if best is None:
        raise FacilityFileError(
            "the file is not UTF-8, GBK/GB18030 or Windows-1252 text; save it as CSV UTF-8 or pass "
            "--encoding"
        )
    return {"gb18030": "gb18030", "cp1252": "cp1252"}.get(best.encoding, best.encoding)


def _read_table(path: Path, *, encoding: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """The table and the text encoding it was read with (None for Excel)."""
    if path.suffix.lower() in {".xlsx", ".xls"}:
        return pd.read_excel(path), None
    raw = path.read_bytes()
    try:
        enc = encoding or detect_encoding(raw)
    except FacilityFileError as exc:
        raise FacilityFileError(f"{path.name}: {exc}") from None
    try:
        text = raw.decode(enc)
    except LookupError:
        raise FacilityFileError(
            f"--encoding {encoding!r} is not an encoding Python knows; use e.g. utf-8, gb18030 or cp1252"
        ) from None
    except UnicodeDecodeError as exc:
        raise FacilityFileError(
            f"{path.name} is not {enc} text (byte {exc.start} cannot be read as {enc}); pass the "
            "right --encoding or save it as CSV UTF-8"
        ) from None
    return pd.read_csv(io.StringIO(text)), enc


def _find(columns: list[str], role: str, given: str | None) -> str | None:
    if given is not None:
        if given not in columns:
            raise FacilityFileError(
                f"--{role}-col {given!r} is not a column; the file has: {', '.join(map(str, columns))}"
            )
        return given
    lower = {_header_key(c): c for c in reversed(columns)}  # the first of equal headers wins
    for alias in ALIASES[role]:
        if _header_key(alias) in lower:
            return lower[_header_key(alias)]
    return None


def _header_key(name: object) -> str:
    """A header as it is matched: case and spaces (anywhere, full-width too) ignored."""
    return re.sub(r"\s+", "", str(name)).lower()


#: A capacity cell longer than this is not a number of places (and is not shown whole).
_MAX_CELL = 50
#: Shown of a refused cell, at most.
_SHOWN = 30
#: Markup, script and template text: a capacity cell holding it is refused even if it has a digit
#: (``<img onerror=alert(1)>`` would otherwise read as 1).
_CODE_LIKE = re.compile(r"[<>={}`\\]|[A-Za-z_]\(")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_ZERO = re.compile(r"\+?0+(\.0*)?|\+?\.0+")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def capacity_cell(value: object) -> float:
    """A capacity cell of a planner's file: its number of places, NaN when empty.

    Text is read as `walkcover.measures.access.parse_capacity` reads an OSM tag (its first number:
    ``"40"``, ``"约40人"``, ``"1,200"``); ``0`` (exactly) is kept: a facility with no places.

    Raises
    ------
    CapacityError
        The reason the cell is not a number of places: no number, negative, not finite, above
        `MAX_CAPACITY`, exponent notation, a spreadsheet formula, markup or code.
    """
    if value is None or value is pd.NA:
        return math.nan
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if float(value) == 0.0:
            return 0.0
        if float(value) < 0:
            raise CapacityError("negative number")
        return _parsed(value, repr(value))
    text = str(value).strip()
    if not text:
        return math.nan
    if len(text) > _MAX_CELL:
        raise CapacityError(f"too long for a number of places ({len(text)} characters)")
    if _CONTROL.search(text):
        raise CapacityError("holds control characters")
    core = text.lstrip("'").lstrip(" \u00a0\u3000")
    if core.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(core):
        raise CapacityError("a spreadsheet formula, not a number")
    if _CODE_LIKE.search(text):
        raise CapacityError("markup or code, not a number")
    if _ZERO.fullmatch(text):
        return 0.0
    return _parsed(text, repr(text))


def _parsed(value: object, shown: str) -> float:
    """`parse_capacity`, its reason without the value (the caller shows it, truncated)."""
    try:
        return parse_capacity(value)
    except CapacityError as exc:
        reason = str(exc).replace(f" in {shown}", "").replace(f": {shown}", "")
        raise CapacityError(reason) from None


def _capacities(values: list[object], *, file_name: str, column: str, tabular: bool) -> np.ndarray:
    """Every capacity cell read (`capacity_cell`), or the import refused naming the bad ones."""
    out = np.full(len(values), np.nan)
    bad: list[str] = []
    n_bad = 0
    for i, value in enumerate(values):
        try:
            out[i] = capacity_cell(value)
        except CapacityError as exc:
            n_bad += 1
            if len(bad) < 5:
                row = i + 2 if tabular else i + 1  # a spreadsheet's row (header is row 1)
                text = str(value)
                shown = text[:_SHOWN] + ("…" if len(text) > _SHOWN else "")
                bad.append(f"{'row' if tabular else 'feature'} {row} {shown!r} ({exc})")
    if n_bad:
        more = f" and {n_bad - len(bad)} more" if n_bad > len(bad) else ""
        raise FacilityFileError(
            terminal(
                f"{file_name}: {n_bad} capacity cell(s) in column {column!r} are not a number of "
                f"places: {'; '.join(bad)}{more}. Write each as a number from 0 to "
                f"{MAX_CAPACITY:,.0f} (0 for a facility with no places), or leave it empty for the "
                "OSM tag or the standard's default; nothing was imported"
            )
        )
    return out


def _raw_column(path: Path, encoding: str | None, position: int) -> list[object]:
    """One column of a CSV or Excel file as written: ``nan``, ``NA`` or ``null`` are text here,
    not missing values (pandas' default reading would make them empty, hiding a bad cell)."""
    if path.suffix.lower() in {".xlsx", ".xls"}:
        col = pd.read_excel(path, usecols=[position], dtype=object, keep_default_na=False)
    else:
        text = path.read_bytes().decode(encoding or "utf-8")
        col = pd.read_csv(io.StringIO(text), usecols=[position], dtype=str, keep_default_na=False)
    return col.iloc[:, 0].tolist()


def parse_coords(value: str) -> str | pyproj.CRS:
    """``wgs84``, ``gcj02``, ``bd09`` or a CRS such as ``EPSG:4547``."""
    v = value.strip().lower()
    if v in {"wgs84", "gcj02", "bd09"}:
        return v
    try:
        return pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError:
        raise ConfigError(
            f"--coords {value!r}: use wgs84, gcj02, bd09 or a CRS such as EPSG:4547"
        ) from None


def read_facility_file(
    path: str | Path,
    *,
    coords: str = "wgs84",
    name_col: str | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    capacity_col: str | None = None,
    encoding: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a facility list into WGS84 points with ``name``, ``address``, ``capacity`` (NaN where
    the file gives none), ``source_row``.

    A CSV's encoding is detected (UTF-8, else GB18030 or Windows-1252) unless `encoding` is given;
    the one used is in ``attrs["encoding"]``. Rows that repeat an earlier row (same name, address and
    coordinates) are imported once, with a warning naming them.

    Raises
    ------
    FacilityFileError
        Missing or unreadable coordinate columns, empty or non-numeric cells (rows named), swapped
        latitude and longitude, capacity cells that are not a number of places (`capacity_cell`).
    """
    path = Path(path)
    if not path.is_file():
        raise FacilityFileError(f"{str(path)!r} does not exist")
    datum = parse_coords(coords)
    if path.suffix.lower() in TABULAR:
        table, used_encoding = _read_table(path, encoding=encoding)
        cols = [str(c) for c in table.columns]
        table.columns = cols
        lon_c, lat_c = _find(cols, "lon", lon_col), _find(cols, "lat", lat_col)
        if lon_c is None or lat_c is None:
            raise FacilityFileError(
                f"{path.name}: no longitude/latitude columns found (looked for 经度/纬度, lon/lat, lng, x/y); "
                f"the file has: {', '.join(cols)}. Name them with --lon-col and --lat-col"
            )
        lon = pd.to_numeric(table[lon_c], errors="coerce")
        lat = pd.to_numeric(table[lat_c], errors="coerce")
        bad = np.flatnonzero(lon.isna().to_numpy() | lat.isna().to_numpy())
        if len(bad):
            rows = ", ".join(
                str(i + 2) for i in bad[:10]
            )  # spreadsheet row numbers (header is row 1)
            raise FacilityFileError(
                f"{path.name}: rows {rows} have no numeric {lon_c}/{lat_c}; fix them, nothing was imported"
            )
        x, y = lon.to_numpy(float), lat.to_numpy(float)
        name_c = _find(cols, "name", name_col)
        addr_c = _find(cols, "address", None)
        names = table[name_c].astype(str).to_numpy() if name_c else np.array([None] * len(table))
        addrs = table[addr_c].astype(str).to_numpy() if addr_c else np.array([None] * len(table))
        cap_c = _find(cols, "capacity", capacity_col)
        capacity = (
            _capacities(
                _raw_column(path, used_encoding, cols.index(cap_c)),
                file_name=path.name,
                column=cap_c,
                tabular=True,
            )
            if cap_c
            else np.full(len(table), np.nan)
        )
        if isinstance(datum, pyproj.CRS):
            src_crs = datum
        else:
            _check_swapped(x, y, path.name, lon_c, lat_c)
            src_crs = pyproj.CRS.from_epsg(4326)
    else:
        gdf = gpd.read_file(path)
        if gdf.crs is None:
            raise CRSError(f"{path.name} has no CRS; save it with one, or give --coords EPSG:n")
        pts = gdf.geometry.representative_point()
        if isinstance(datum, pyproj.CRS):
            pts = pts.set_crs(datum, allow_override=True)
        x, y = pts.x.to_numpy(), pts.y.to_numpy()
        src_crs = pts.crs
        cols = [str(c) for c in gdf.columns if c != "geometry"]
        name_c = _find(cols, "name", name_col)
        addr_c = _find(cols, "address", None)
        names = gdf[name_c].astype(str).to_numpy() if name_c else np.array([None] * len(gdf))
        addrs = gdf[addr_c].astype(str).to_numpy() if addr_c else np.array([None] * len(gdf))
        cap_c = _find(cols, "capacity", capacity_col)
        capacity = (
            _capacities(gdf[cap_c].tolist(), file_name=path.name, column=cap_c, tabular=False)
            if cap_c
            else np.full(len(gdf), np.nan)
        )
        if src_crs.is_geographic and not isinstance(datum, pyproj.CRS):
            _check_swapped(x, y, path.name, "x", "y")
        used_encoding = None
    if len(x) == 0:
        raise FacilityFileError(f"{path.name} holds no rows")
    if not (isinstance(datum, str) and src_crs.is_geographic):
        x, y = pyproj.Transformer.from_crs(src_crs, 4326, always_xy=True).transform(x, y)
    if isinstance(datum, str):
        x, y = cc.to_wgs84(x, y, datum)  # type: ignore[arg-type]
    out = gpd.GeoDataFrame(
        {
            "name": names,
            "address": addrs,
            "capacity": capacity.astype(float),
            "source_row": np.arange(len(x)) + 1,
            "source_file": path.name,
        },
        geometry=shapely.points(np.asarray(x), np.asarray(y)),
        crs=4326,
    )
    key = pd.DataFrame(
        {
            "name": out["name"],
            "address": out["address"],
            "x": np.round(np.asarray(x, float), 7),
            "y": np.round(np.asarray(y, float), 7),
        }
    )
    repeated = key.duplicated().to_numpy()
    if repeated.any():
        # as a spreadsheet numbers them (the header is row 1); features of a vector file from 1
        rows = out["source_row"].to_numpy()[repeated] + (1 if path.suffix.lower() in TABULAR else 0)
        shown = ", ".join(map(str, rows[:10])) + (" …" if len(rows) > 10 else "")
        what = "row" if path.suffix.lower() in TABULAR else "feature"
        warnings.warn(
            f"{path.name}: {len(rows)} {what}(s) repeat an earlier one (same name, address and "
            f"coordinates) and are imported once: {what}s {shown}",
            UserWarning,
            stacklevel=2,
        )
        out = out[~repeated].reset_index(drop=True)
    out.attrs["encoding"] = used_encoding
    out.attrs["capacity_column"] = cap_c
    return out


def _check_swapped(lon: np.ndarray, lat: np.ndarray, name: str, lon_c: str, lat_c: str) -> None:
    if np.any(np.abs(lat) > 90) and np.all(np.abs(lon) <= 90):
        raise FacilityFileError(
            f"{name}: latitude and longitude look swapped ({lat_c} holds values above 90); "
            f"swap the columns or pass --lon-col {lat_c} --lat-col {lon_c}"
        )
    china_swapped = np.mean(~cc.out_of_china(lat, lon))  # read the other way round, in China
    if china_swapped > 0.5:
        raise FacilityFileError(
            f"{name}: latitude and longitude look swapped: {lat_c} holds values like {lat[0]:g} and {lon_c} like "
            f"{lon[0]:g}, which is a longitude/latitude pair in China the wrong way round; "
            f"pass --lon-col {lat_c} --lat-col {lon_c}"
        )
    if np.any(np.abs(lon) > 180) or np.any(np.abs(lat) > 90):
        raise FacilityFileError(
            f"{name}: coordinates are not degrees (values beyond ±180/±90); "
            "if they are projected metres, pass --coords EPSG:n"
        )


def detect_shift(
    points: gpd.GeoDataFrame,
    reference: gpd.GeoDataFrame,
    crs,
    *,
    bin_m: float = 25.0,
    search_m: float = 1500.0,
    chunk_pairs: int = 500_000,
) -> tuple[float, float, float] | None:
    """The consistent offset (east, north in metres, and the share of points that agree) that would
    move `points` onto `reference` features, if most points agree on one and it exceeds 100 m.

    Every (point, reference within `search_m`) pair votes for its offset's `bin_m` bin and the 8
    around it, each point at most once per bin; the bin most points vote for wins, and the median
    of the offsets within one bin of it is the shift. Points are taken in chunks of about
    `chunk_pairs` pairs, so memory stays flat however long the list (a 200,000-row import peaked at
    3.3 GB when all pairs were held at once).
    """
    if len(points) < 3 or len(reference) < 3:
        return None
    p = points.to_crs(crs).geometry
    px, py = p.x.to_numpy(), p.y.to_numpy()
    r = reference.to_crs(crs).geometry.representative_point()
    rx, ry = r.x.to_numpy(), r.y.to_numpy()
    tree = shapely.STRtree(r.to_numpy())
    half = int(np.ceil(search_m / bin_m)) + 2  # bins run from -half to half on each axis
    width = 2 * half + 1
    votes = np.zeros(width * width, dtype=np.int64)
    per_point = max(
        1,
        len(tree.query(p.iloc[:200].to_numpy(), predicate="dwithin", distance=search_m)[0])
        / min(200, len(p)),
    )
    step = max(1_000, int(chunk_pairs / per_point))

    def pairs(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        stop = min(start + step, len(p))
        ip, ir = tree.query(p.iloc[start:stop].to_numpy(), predicate="dwithin", distance=search_m)
        ip = ip + start
        return ip, ir, rx[ir] - px[ip], ry[ir] - py[ip]

    for start in range(0, len(p), step):
        ip, _, dx, dy = pairs(start)
        if not len(ip):
            continue
        bx = np.round(dx / bin_m).astype(np.int64) + half
        by = np.round(dy / bin_m).astype(np.int64) + half
        keys = np.concatenate([(bx + i) * width + (by + j) for i in (-1, 0, 1) for j in (-1, 0, 1)])
        rows = np.tile(ip - start, 9)
        # one vote per point and bin: a point × bin matrix sums its duplicates, then counts as 1
        m = scipy.sparse.csr_matrix(
            (np.ones(len(keys), dtype=np.int32), (rows, keys)), shape=(step, width * width)
        )
        m.sum_duplicates()
        votes += np.bincount(m.indices, minlength=width * width)
    n_best = int(votes.max())
    if n_best == 0:
        return None
    best = int(np.argmax(votes))  # ties: the lowest east bin, then the lowest north bin
    best_x, best_y = best // width - half, best % width - half
    share = n_best / len(points)
    kept_dx, kept_dy = [], []
    for start in range(0, len(p), step):
        _, _, dx, dy = pairs(start)
        k = (np.abs(np.round(dx / bin_m) - best_x) <= 1) & (
            np.abs(np.round(dy / bin_m) - best_y) <= 1
        )
        kept_dx.append(dx[k])
        kept_dy.append(dy[k])
    ex, ny = float(np.median(np.concatenate(kept_dx))), float(np.median(np.concatenate(kept_dy)))
    if share >= 0.5 and n_best >= 3 and np.hypot(ex, ny) > 100:
        return ex, ny, share
    return None


def shift_message(path_name: str, east: float, north: float, share: float) -> str:
    """Explain a shift found by `detect_shift` (the offset that would move the points onto OSM)."""
    side_x = "east" if east < 0 else "west"  # the points sit opposite to the correcting offset
    side_y = "north" if north < 0 else "south"
    return (
        f"{path_name}: {share:.0%} of its points sit about {abs(east):.0f} m {side_x} and {abs(north):.0f} m "
        f"{side_y} of the matching OpenStreetMap features, all in the same direction. That is what Chinese map "
        "coordinates read as WGS84 look like (in Zhengzhou GCJ-02 sits about 555 m east and 130 m south): the "
        "file is probably GCJ-02 (Amap, Tencent) or BD-09 (Baidu). Pass --coords gcj02 or --coords bd09; "
        "nothing was imported"
    )


def write_import(
    points: gpd.GeoDataFrame, city_id: str, standard_id: str, *, overwrite: bool
) -> Path:
    """Store an import (WGS84 GeoPackage), atomically; refuse to replace one without `overwrite`.

    Raises
    ------
    OutputExistsError
        One is there and `overwrite` is not given.
    OutputFolderError
        The imports folder cannot be written (full, read-only); the message names it and
        ``WALKCOVER_DATA``, the way to put it elsewhere.
    """
    from walkcover._atomic import storage_errors, write_atomic
    from walkcover._errors import OutputExistsError, OutputFolderError

    target = imported_path(city_id, standard_id)
    if target.exists() and not overwrite:
        raise OutputExistsError(
            f"{target} already holds an import for {standard_id}; pass --overwrite to replace it"
        )
    try:
        with storage_errors(target):
            return write_atomic(
                target,
                lambda tmp: points.to_file(tmp, layer="facilities", driver="GPKG", VERSION="1.2"),
            )
    except OSError as exc:
        why = "the disk is full" if exc.errno == errno.ENOSPC else "it cannot be written"
        raise OutputFolderError(
            f"imports folder {str(imports_dir())!r}: {why} ({exc}); nothing was imported. Free "
            "some space there, or set WALKCOVER_DATA to a folder you can write to"
        ) from exc


def imported_facilities(city_id: str, standard_id: str, crs) -> gpd.GeoDataFrame | None:
    """The imported facilities of a standard, as facility rows (projected), or None.

    Their ``capacity`` is the file's, NaN where it gave none; a stored value that is not a number
    from 0 to `MAX_CAPACITY` is NaN. The column is left out when no row has one (an import made
    before capacities were read, or from a file without them): the run then uses tags or defaults.
    """
    path = imported_path(city_id, standard_id)
    if not path.exists():
        return None
    pts = gpd.read_file(path, layer="facilities").to_crs(crs)
    if "capacity" in pts:
        capacity = pd.to_numeric(pts["capacity"], errors="coerce").to_numpy(dtype=float, copy=True)
        with np.errstate(invalid="ignore"):
            capacity[~((capacity >= 0) & (capacity <= MAX_CAPACITY))] = np.nan
    else:
        capacity = np.full(len(pts), np.nan)
    rows = {
        "osm_id": [f"file:{f}#{r}" for f, r in zip(pts["source_file"], pts["source_row"])],
        "standard": standard_id,
        "name": pts["name"].to_numpy(),
        "matched_by": [f"imported from {f}" for f in pts["source_file"]],
        "counts": True,
        "reason": "",
    }
    if np.isfinite(capacity).any():
        rows["capacity"] = capacity
    return gpd.GeoDataFrame(
        rows,
        geometry=pts.geometry.to_numpy(),
        crs=crs,
    )


def merge_sources(
    osm: gpd.GeoDataFrame, files: gpd.GeoDataFrame | None, *, source: str, merge_within_m: float
) -> gpd.GeoDataFrame:
    """Facilities from OSM, from files, or both; with both, a file point within `merge_within_m` of
    an OSM facility of the same standard is the same facility and is dropped."""
    if source == "osm" or files is None or not len(files):
        return osm if source != "files" else osm.iloc[:0]
    if source == "files":
        return files
    counted = osm[osm["counts"].to_numpy(dtype=bool)]
    if len(counted):
        near = shapely.STRtree(counted.geometry.to_numpy()).query(
            files.geometry.to_numpy(), predicate="dwithin", distance=merge_within_m
        )[0]
        files = files.iloc[np.setdiff1d(np.arange(len(files)), near)]
    return gpd.GeoDataFrame(
        pd.concat([osm, files], ignore_index=True), geometry="geometry", crs=osm.crs
    )


def check_points(
    points: gpd.GeoDataFrame,
    city,
    standard,
    *,
    file_name: str,
    source: Path | None,
    cache_dir: Path | None,
    coords: str = "wgs84",
) -> None:
    """Refuse points that lie outside the city, sit off OpenStreetMap in one consistent direction,
    or sit far from the streets unless read in another Chinese datum.

    Raises
    ------
    FacilityFileError
        Naming how many points lie outside, or the shift found and the ``--coords`` to pass.
    """
    from walkcover.config.standards import query_tags
    from walkcover.config.study_area import working_crs
    from walkcover.sources import OSMQuery, load_osm

    crs = working_crs(city)
    area = city.districts.to_crs(crs).union_all().buffer(5000)
    pts = points.to_crs(crs)
    inside = pts.within(area).to_numpy()
    if inside.mean() < 0.5:
        b = points.total_bounds
        raise FacilityFileError(
            f"{file_name}: {int((~inside).sum())} of {len(points)} points lie outside {city.config.name} / "
            f"{city.config.name_en} (they span {b[0]:.5f}, {b[1]:.5f} to {b[2]:.5f}, {b[3]:.5f}); check --coords "
            "and the longitude/latitude columns; nothing was imported"
        )
    hull = gpd.GeoSeries(
        [shapely.convex_hull(shapely.multipoints(pts.geometry.to_numpy())).buffer(2000)], crs=crs
    )
    from walkcover.sources import source_spec

    kind, path = source_spec(source, city.config.source)
    layers = load_osm(
        kind,
        path,
        OSMQuery(
            polygon=hull.to_crs(4326).iloc[0],
            walk_highways=tuple(city.config.network.walk_highways),
            feature_tags=query_tags(list(standard.selectors)),
        ),
        cache_dir=cache_dir,
    )
    from walkcover.measures.facilities import select_facilities

    reference = select_facilities(layers.features, standard)
    shift = detect_shift(points, reference, crs)
    if shift is not None:
        raise FacilityFileError(shift_message(file_name, *shift))
    if coords in ("wgs84", "gcj02", "bd09"):
        better = better_datum(points, coords, layers.streets, crs)
        if better is not None:
            datum, declared_m, better_m = better
            raise FacilityFileError(
                f"{file_name}: read as {coords} its points sit a median {declared_m:.0f} m from the nearest street; "
                f"read as {datum} they sit {better_m:.0f} m from it. The file is probably {datum}: pass "
                f"--coords {datum}; nothing was imported"
            )


def better_datum(points: gpd.GeoDataFrame, declared: str, streets: gpd.GeoDataFrame, crs):
    """Another Chinese datum under which the points sit much closer to the streets, if any.

    Returns ``(datum, median metres as declared, median metres under that datum)`` when the points
    sit more than 40 m from the streets as declared and under 40% of that under another datum.
    """
    if not len(streets) or not len(points):
        return None
    lines = streets.to_crs(crs).geometry.to_numpy()
    tree = shapely.STRtree(lines)
    raw = cc.from_wgs84(points.geometry.x.to_numpy(), points.geometry.y.to_numpy(), declared)  # type: ignore[arg-type]

    def median_m(lon: np.ndarray, lat: np.ndarray) -> float:
        pts = gpd.GeoSeries(shapely.points(lon, lat), crs=4326).to_crs(crs).to_numpy()
        _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        return float(np.median(dist))

    as_declared = median_m(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    if as_declared <= 40:
        return None
    options = {
        d: median_m(*cc.to_wgs84(*raw, d)) for d in ("wgs84", "gcj02", "bd09") if d != declared
    }
    datum, best = min(options.items(), key=lambda kv: kv[1])
    return (datum, as_declared, best) if best < 0.4 * as_declared else None
