"""Population rasters read over the districts: every cell whose centre lies in a district counts, in
any CRS and unit, to the person; rasters of nothing but nodata are refused; rasters in another CRS
than the working one are said in a note. Each expected figure is computed here from the cells'
centres with numpy and shapely, sharing nothing with walkcover's windows."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from shapely.geometry import box

from conftest import CRS_M, X0, Y0, shift
from walkcover._errors import SourceError
from walkcover.config.study_area import load_city, working_crs
from walkcover.measures.population import allocate_groups, allocate_raster

TM35FIN = "EPSG:3067"  # Finland's national grid: projected, metres, not the sample's UTM 35N
#: A transverse Mercator on the sample in US survey feet (a projected CRS whose unit is not metres).
TM_FEET = (
    "+proj=tmerc +lat_0=0 +lon_0=25 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=us-ft +no_defs"
)
US_FOOT_M = 1200 / 3937


@pytest.fixture(scope="module")
def sample():
    """The Helsinki sample's four districts in its working CRS (UTM 35N), and one small home at a
    point inside each, so every district's people land on its own home."""
    city = load_city("helsinki-sample")
    crs = working_crs(city)
    districts = city.districts.to_crs(crs)[["district_id", "geometry"]].reset_index(drop=True)
    inside = shapely.point_on_surface(districts.geometry.to_numpy())
    homes = gpd.GeoDataFrame(
        {"district_id": districts["district_id"].to_numpy()},
        geometry=shapely.buffer(inside, 5.0),
        crs=crs,
    )
    return districts, homes


def write_raster(path, data, *, crs, x0, y0, cell, nodata=None):
    """`data` (row 0 the northernmost) as a GeoTIFF whose north-west corner is (x0, y0)."""
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
        dtype=data.dtype, crs=crs, transform=from_origin(x0, y0, cell, cell), nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path


#: Where the districts' west and north edges fall in their cells, in fractions of a cell: the
#: window's fractional start and length decide whether a rounding drops the last row or column.
ALIGNMENTS = [(fx, fy) for fx in (0.1, 0.35, 0.6, 0.85) for fy in (0.1, 0.35, 0.6, 0.85)]


def over(districts, crs, *, cell, fx, fy, margin_cells=3):
    """The north-west corner and shape of a grid of `cell`-sized cells in `crs` covering
    `districts` with `margin_cells` to spare, their west edge `fx` of a cell east of a cell's
    west edge and their north edge `fy` of a cell south of a cell's north edge."""
    x0, y0, x1, y1 = districts.to_crs(crs).total_bounds
    left = x0 - (margin_cells + fx) * cell
    top = y1 + (margin_cells + fy) * cell
    width = int(np.ceil((x1 - left) / cell)) + margin_cells
    height = int(np.ceil((top - y0) / cell)) + margin_cells
    return left, top, (height, width)


def people_by_centre(data, *, crs, x0, y0, cell, districts):
    """Per district, the sum of the positive cells of `data` whose centres lie inside it (its
    vertices projected to the raster's CRS), by numpy and shapely on the cells' centres."""
    rows, cols = np.indices(data.shape)
    cx, cy = x0 + (cols + 0.5) * cell, y0 - (rows + 0.5) * cell
    to_raster = pyproj.Transformer.from_crs(districts.crs, crs, always_xy=True)
    values = np.where(np.isfinite(data) & (data > 0), data, 0).astype(float)
    out = {}
    for did, geom in zip(districts["district_id"], districts.geometry):
        poly = shapely.transform(geom, lambda xy: np.column_stack(to_raster.transform(*xy.T)))
        out[did] = float(values[shapely.contains_xy(poly, cx, cy)].sum())
    return out


def per_district(residents, homes):
    """Residents summed per district of `homes`."""
    ids = homes["district_id"].to_numpy()
    return {did: float(residents[ids == did].sum()) for did in np.unique(ids)}


@pytest.mark.parametrize("crs", [TM35FIN, "working"])
def test_every_cell_whose_centre_is_in_a_district_counts_to_the_person(tmp_path, sample, crs):
    """Counts per cell (0-9 people) on a 100 m grid in EPSG:3067 or in the working CRS, at 16
    alignments of its cells on the districts' edges: each district holds exactly the people of the
    cells whose centres lie in it (the window rounded its start down and its length to the
    nearest, and so dropped the last row or column of cells at about half the alignments)."""
    districts, homes = sample
    crs = districts.crs if crs == "working" else crs
    rng = np.random.default_rng(7)
    for fx, fy in ALIGNMENTS:
        x0, y0, shape = over(districts, crs, cell=100, fx=fx, fy=fy)
        data = rng.integers(0, 10, shape).astype("int32")
        path = write_raster(
            tmp_path / f"pop-{fx}-{fy}.tif", data, crs=crs, x0=x0, y0=y0, cell=100, nodata=-1
        )
        want = people_by_centre(data, crs=crs, x0=x0, y0=y0, cell=100, districts=districts)
        residents, places = allocate_raster(homes, districts, path, weight=np.ones(len(homes)))
        assert len(places) == 0
        got = per_district(residents, homes)
        assert set(got) == set(want) and all(want[d] > 100 for d in want)  # people everywhere
        for did in want:
            assert got[did] == pytest.approx(want[did], abs=1e-9), (fx, fy, did)


@pytest.mark.parametrize(
    ("crs", "cell", "m_per_unit"), [(TM35FIN, 50, 1.0), (TM_FEET, 150, US_FOOT_M)]
)
def test_a_density_raster_counts_every_cell_whose_centre_is_in_a_district(
    tmp_path, sample, crs, cell, m_per_unit
):
    """Persons per hectare, on 50 m cells of EPSG:3067 (0.25 ha) or 150 ft cells of a transverse
    Mercator in US survey feet (0.209 ha): a cell's people = density × its area in hectares,
    whatever the CRS's unit, and each district holds those of the cells whose centres lie in it."""
    districts, homes = sample
    ha = (cell * m_per_unit) ** 2 / 1e4
    rng = np.random.default_rng(11)
    for fx, fy in ALIGNMENTS:
        x0, y0, shape = over(districts, crs, cell=cell, fx=fx, fy=fy)
        data = (4 * rng.integers(0, 60, shape)).astype("float32")
        data[::7, ::5] = np.nan  # nodata cells count as 0
        path = write_raster(
            tmp_path / f"density-{fx}-{fy}.tif", data, crs=crs, x0=x0, y0=y0, cell=cell,
            nodata=np.nan,
        )  # fmt: skip
        dens = people_by_centre(data, crs=crs, x0=x0, y0=y0, cell=cell, districts=districts)
        residents, _ = allocate_raster(
            homes, districts, path, weight=np.ones(len(homes)), units_per="per_ha"
        )
        got = per_district(residents, homes)
        for did, d in dens.items():
            assert got[did] == pytest.approx(d * ha, rel=1e-12), (fx, fy, did)


def test_a_raster_over_part_of_the_districts_counts_the_cells_it_has(tmp_path, sample):
    """A raster stopping three cells inside the districts' bounds on every side (the window over the
    districts starts before its first row and column and is clipped to it): each district holds
    exactly the people of its cells the raster has, wherever its homes are."""
    districts, homes = sample
    crs = districts.crs
    rng = np.random.default_rng(5)
    for fx, fy in ALIGNMENTS[::5]:
        x0, y0, shape = over(districts, crs, cell=100, fx=fx, fy=fy, margin_cells=-3)
        data = rng.integers(1, 10, shape).astype("int32")
        path = write_raster(tmp_path / f"part-{fx}-{fy}.tif", data, crs=crs, x0=x0, y0=y0, cell=100)
        want = people_by_centre(data, crs=crs, x0=x0, y0=y0, cell=100, districts=districts)
        residents, _ = allocate_raster(homes, districts, path, weight=np.ones(len(homes)))
        got = per_district(residents, homes)
        assert all(want[d] > 0 for d in want)
        for did in want:
            assert got[did] == pytest.approx(want[did], abs=1e-9), (fx, fy, did)


def test_a_home_beyond_the_window_takes_no_cell_of_the_next_row(tmp_path):
    """A district over cells 0-4 of a 100 m grid (its edges cut through them); home A in cell
    (row 1, col 0) with its 10 people, home B of the same district east of the window, in row 0.
    B's cell index row × width + col (col = width) named cell (1, 0), and B took half of A's
    people; it has none of its own (the district's other cells are empty)."""
    data = np.zeros((3, 7), dtype="float32")
    data[1, 0] = 10
    path = write_raster(tmp_path / "pop.tif", data, crs=CRS_M, x0=X0, y0=Y0 + 300, cell=100)
    districts = gpd.GeoDataFrame(
        {"district_id": ["d"]}, geometry=[shift(box(20, 20, 480, 280))], crs=CRS_M
    )
    homes = gpd.GeoDataFrame(
        {"district_id": ["d", "d"]},
        geometry=[shift(box(40, 140, 60, 160)), shift(box(540, 240, 560, 260))],  # A, B
        crs=CRS_M,
    )
    residents, _ = allocate_raster(homes, districts, path, weight=np.ones(2))
    np.testing.assert_allclose(residents, [10.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("nodata", [-9999.0, None])
def test_a_raster_of_nothing_but_nodata_is_refused(tmp_path, sample, nodata):
    """All cells nodata (declared -9999, or NaN with no nodata declared): one line naming the file,
    what it holds and the fix, not districts of nobody."""
    districts, homes = sample
    x0, y0, shape = over(districts, TM35FIN, cell=100, fx=0.6, fy=0.35)
    data = np.full(shape, np.nan if nodata is None else nodata, dtype="float32")
    path = write_raster(
        tmp_path / "empty.tif", data, crs=TM35FIN, x0=x0, y0=y0, cell=100, nodata=nodata
    )
    with pytest.raises(SourceError) as err:
        allocate_raster(homes, districts, path, weight=np.ones(len(homes)))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"population raster {str(path)!r} holds only nodata over the districts"
    )
    assert ("nodata -9999" if nodata is not None else "masked or NaN") in message
    assert "gdal_edit.py -a_nodata" in message


def test_an_age_group_raster_of_nothing_but_nodata_is_refused(tmp_path, sample):
    """The group's raster is named by its config key and file; the total raster was fine."""
    districts, homes = sample
    x0, y0, shape = over(districts, TM35FIN, cell=100, fx=0.6, fy=0.35)
    old = write_raster(
        tmp_path / "old.tif", np.full(shape, -1, dtype="int16"), crs=TM35FIN, x0=x0, y0=y0,
        cell=100, nodata=-1,
    )  # fmt: skip
    with pytest.raises(SourceError) as err:
        allocate_groups(
            homes, districts, {"over_65": ([old], "people")}, weight=np.ones(len(homes))
        )
    message = str(err.value)
    assert "\n" not in message
    assert re.match(
        re.escape(
            f"population.groups.over_65 raster {str(old)!r} holds only nodata over the districts"
        ),
        message,
    )
    assert "nodata -1" in message


def test_an_age_group_raster_in_another_crs_is_projected_with_a_note(tmp_path, sample):
    """A group raster in EPSG:3067 counts its cells by their centres like the total raster, and a
    note says it is not in the working CRS; one in the working CRS gets no note."""
    districts, homes = sample
    x0, y0, shape = over(districts, TM35FIN, cell=100, fx=0.6, fy=0.35)
    kids = np.random.default_rng(3).integers(0, 4, shape).astype("int32")
    kpath = write_raster(tmp_path / "kids.tif", kids, crs=TM35FIN, x0=x0, y0=y0, cell=100)
    wx0, wy0, wshape = over(districts, districts.crs, cell=100, fx=0.35, fy=0.6)
    old = np.random.default_rng(4).integers(0, 3, wshape).astype("int32")
    opath = write_raster(tmp_path / "old.tif", old, crs=districts.crs, x0=wx0, y0=wy0, cell=100)
    notes: list[str] = []
    got = allocate_groups(
        homes,
        districts,
        {"school_age": ([kpath], "people"), "over_65": ([opath], "people")},
        weight=np.ones(len(homes)),
        notes=notes,
    )
    want = people_by_centre(kids, crs=TM35FIN, x0=x0, y0=y0, cell=100, districts=districts)
    by = per_district(got["school_age"], homes)
    for did in want:
        assert by[did] == pytest.approx(want[did], abs=1e-9), did
    assert len(notes) == 1, notes
    note = notes[0]
    assert note.startswith("population.groups.school_age raster kids.tif is in EPSG:3067")
    assert f"not the working CRS EPSG:{districts.crs.to_epsg()}" in note
    assert "old.tif" not in note
    # the total raster says the same of itself
    total_notes: list[str] = []
    allocate_raster(homes, districts, kpath, weight=np.ones(len(homes)), notes=total_notes)
    assert len(total_notes) == 1 and total_notes[0].startswith(
        "population raster kids.tif is in EPSG:3067"
    )


def test_the_sample_city_keeps_every_resident_of_a_raster_in_another_crs(
    tmp_path, sample, sample_cache
):
    """The whole run (`walkcover.assess`) on the Helsinki sample with counts per 100 m cell in
    EPSG:3067: each district's residents are the people of the cells whose centres lie in it, to
    the person (before the fix, the window's dropped column and row cost the eastern and southern
    districts theirs)."""
    import walkcover as wc

    districts, _ = sample
    x0, y0, shape = over(districts, TM35FIN, cell=100, fx=0.85, fy=0.35)
    data = np.random.default_rng(1).integers(0, 10, shape).astype("float32")
    path = write_raster(tmp_path / "pop.tif", data, crs=TM35FIN, x0=x0, y0=y0, cell=100, nodata=-1)
    want = people_by_centre(data, crs=TM35FIN, x0=x0, y0=y0, cell=100, districts=districts)
    a = wc.assess(
        "helsinki-sample", standard="toilet", population_raster=path, cache_dir=sample_cache
    )
    got = a.demand.groupby("district_id")["residents"].sum()
    assert a.summary["population_model"].str.contains("population raster pop.tif").all()
    for did, people in want.items():
        assert got[did] == pytest.approx(people, abs=1e-6), did
    # and the run says the raster was not in its CRS (the note reaches the summary's notes)
    said = [str(n) for n in a.assessment.notes if "pop.tif is in EPSG:3067" in str(n)]
    assert len(said) == 1 and "not resampled: its people are kept" in said[0]


@pytest.mark.parametrize(
    ("value", "needle"),
    [(-50.0, "holds no positive count"), (3e38, "people per hectare, more than any place holds")],
    ids=["all-negative", "overflowing"],
)
def test_a_raster_whose_values_are_no_residents_is_refused(tmp_path, sample, value, needle):
    """Every cell negative (no nodata declared), or values no place can hold (3e38 per 100 m cell):
    refused in one line, not 0 residents or 10^39."""
    districts, homes = sample
    x0, y0, shape = over(districts, TM35FIN, cell=100, fx=0.6, fy=0.35)
    path = write_raster(
        tmp_path / "odd.tif", np.full(shape, value, dtype="float32"), crs=TM35FIN, x0=x0, y0=y0,
        cell=100,
    )  # fmt: skip
    with pytest.raises(SourceError, match=needle) as err:
        allocate_raster(homes, districts, path, weight=np.ones(len(homes)))
    assert "\n" not in str(err.value) and "odd.tif" in str(err.value)
