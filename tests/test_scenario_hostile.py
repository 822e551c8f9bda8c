"""What-if scenarios given hostile input: a capacity past OSM's cap, a tampered or oversized
scenario file, an export into a run of other standards. Each is refused with a short message
that names the value and the fix; nothing is silently read or replaced."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import pytest
import yaml

from walkcover import scenario as scn
from walkcover._errors import OutputExistsError, OutputFolderError

DISTRICT, STANDARD = "sample-sw", "toilet"


def gap_spot(results) -> tuple[float, float]:
    """A place (lon, lat) in the run's largest toilet gap of the district."""
    gaps = results.gaps(STANDARD, DISTRICT).sort_values("rank").iloc[:1]
    p = gpd.GeoSeries(gaps.geometry.representative_point().to_numpy(), crs=gaps.crs).to_crs(4326)
    return float(p.iloc[0].x), float(p.iloc[0].y)


@pytest.fixture(scope="module")
def saved(sample_results, tmp_path_factory):
    """A scenario of one site saved in a folder: its YAML file's text."""
    sc = sample_results.scenario(STANDARD, district=DISTRICT, name="hostile base")
    lon, lat = gap_spot(sample_results)
    sc.add(lon=lon, lat=lat, name="site", capacity=3)
    path = sc.save(tmp_path_factory.mktemp("saved"))
    return path.read_text(encoding="utf-8")


def tampered(tmp_path, text: str, name: str = "tampered.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_capacity_past_the_osm_cap_is_refused_naming_value_and_limit(sample_results):
    sc = sample_results.scenario(STANDARD, district=DISTRICT, name="caps")
    lon, lat = gap_spot(sample_results)
    with pytest.raises(scn.ScenarioError, match=r"capacity=1e\+308 .*limit 100,000"):
        sc.add(lon=lon, lat=lat, capacity=1e308)
    with pytest.raises(scn.ScenarioError, match="capacity=100001 .*limit 100,000"):
        sc.add(lon=lon, lat=lat, capacity=100_001)
    # an int too large for a float: refused as not finite, not an OverflowError
    with pytest.raises(scn.ScenarioError, match="capacity=.*give a positive number"):
        sc.add(lon=lon, lat=lat, capacity=10**400)
    with pytest.raises(scn.ScenarioError, match="lon=.*…: give a finite number of degrees"):
        sc.add(lon=10**400, lat=lat)
    assert sc.edits == ()
    sc.add(lon=lon, lat=lat, capacity=100_000)
    assert sc.sites[0].capacity == 100_000.0


@pytest.mark.parametrize("version", ["true", "1.0", "'1'"])
def test_a_version_that_is_not_the_whole_number_is_refused(
    saved, sample_results, tmp_path, version
):
    text = re.sub(r"(?m)^walkcover_scenario: 1$", f"walkcover_scenario: {version}", saved)
    assert text != saved
    with pytest.raises(scn.ScenarioError, match="not the whole number 1 or 2"):
        scn.load_scenario(tampered(tmp_path, text), sample_results.assessment)


def test_a_name_that_is_not_text_is_refused(saved, sample_results, tmp_path):
    text = re.sub(r"(?m)^name: .*$", "name: {a: 1}", saved)
    with pytest.raises(scn.ScenarioError, match=r"name is \{'a': 1\}, not text"):
        scn.load_scenario(tampered(tmp_path, text), sample_results.assessment)
    text = re.sub(r"(?m)^name: .*$", "name: " + "N" * 500_000, saved)
    with pytest.raises(scn.ScenarioError, match="1 to 200 characters") as err:
        scn.load_scenario(tampered(tmp_path, text), sample_results.assessment)
    assert len(str(err.value)) < 500  # the value is cut, not echoed whole


def test_aliases_and_oversized_files_are_refused_before_parsing(saved, sample_results, tmp_path):
    a = sample_results.assessment
    bomb = "x: &a [y, y, y, y, y, y, y, y, y, y]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi")
    )
    with pytest.raises(scn.ScenarioError, match="anchors and aliases") as err:
        scn.load_scenario(tampered(tmp_path, saved + bomb), a)
    assert len(str(err.value)) < 1000
    big = saved + "padding: '" + "p" * 1_100_000 + "'\n"
    with pytest.raises(scn.ScenarioError, match=r"limit 1 MB") as err:
        scn.load_scenario(tampered(tmp_path, big), a)
    assert len(str(err.value)) < 1000
    doc = yaml.safe_load(saved)
    assert scn.load_scenario(tampered(tmp_path, saved), a).summary is not None
    assert doc["walkcover_scenario"] == scn.FILE_VERSION


def test_a_link_is_refused_when_a_folder_is_given(saved, sample_results, tmp_path):
    outside = tampered(tmp_path, saved, "outside.yaml")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    link = folder / "linked.yaml"
    link.symlink_to(outside)
    a = sample_results.assessment
    with pytest.raises(scn.ScenarioError, match="symbolic link"):
        scn.load_scenario(link, a, folder=folder)
    with pytest.raises(scn.ScenarioError, match="leads outside"):
        scn.load_scenario(folder / ".." / "outside.yaml", a, folder=folder)
    assert scn.load_scenario(link, a).edits  # from Python without a folder: as before


def test_export_into_a_run_of_other_standards_is_refused(sample_results, tmp_path):
    sc = sample_results.scenario(STANDARD, district=DISTRICT, name="other standards")
    lon, lat = gap_spot(sample_results)
    sc.add(lon=lon, lat=lat)
    sample_results.export_scenario(sc, tmp_path)
    with pytest.raises(OutputExistsError, match=r"--overwrite \(overwrite=True in Python\)"):
        sample_results.export_scenario(sc, tmp_path)
    assert sample_results.export_scenario(sc, tmp_path, overwrite=True)  # same standards: fine
    record = tmp_path / "helsinki-sample" / DISTRICT / "run.json"
    doc = json.loads(record.read_text(encoding="utf-8"))
    toilet = next(s for s in doc["standards"] if s["id"] == STANDARD)
    ours = float(toilet["threshold_m"])
    # as another standards file gives it: every radius 200 m longer
    toilet["threshold_m"] = ours + 200
    toilet["context_thresholds_m"] = {
        k: v + 200 for k, v in toilet.get("context_thresholds_m", {}).items()
    }
    record.write_text(json.dumps(doc), encoding="utf-8")
    before = {p: p.read_bytes() for p in record.parent.iterdir() if p.is_file()}
    with pytest.raises(OutputFolderError, match="other standards") as err:
        sample_results.export_scenario(sc, tmp_path, overwrite=True)
    msg = str(err.value)
    assert f"toilet at {ours + 200:g} m" in msg and f"there, {ours:g} m" in msg
    assert "--standards" in msg and "another folder" in msg
    assert {p: p.read_bytes() for p in record.parent.iterdir() if p.is_file()} == before
