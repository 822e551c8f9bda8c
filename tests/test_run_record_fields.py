"""What ``run.json`` records besides the figures: every locked gate that cut a walked path and
every feature left out as disused or abandoned (not the first five a note once named) and which
standards file was read (its own id and the SHA-256 of
its bytes), each written in full, read back as hostile input, and absent from older records."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from conftest import box_way, write_city
from walkcover.cli import app
from walkcover.presentation.record import (
    MAX_LEFT_OUT,
    MAX_LOCKED_GATES,
    RunRecordError,
    district_run,
    load_record,
    record_data,
)

#: The locked gates' node ids, in the order the footway passes them (not ascending).
GATES = (17, 11, 15, 12, 16, 13, 14)


def gated_city(tmp_path: Path):
    """A street y=0 from (0,0) to (800,0) with a toilet at (0,5) and a home at (290..310,
    -30..-10); a footway (0,0)→(0,100)→(800,100)→(800,0) through seven locked gates (ids
    `GATES`) and one open gate (id 18)."""
    nodes: dict = {1: (0, 0), 2: (800, 0), 3: (0, 100), 4: (800, 100)}
    nodes[9] = (0, 5, {"amenity": "toilets"})
    locked = ({"barrier": "gate", "access": "private"}, {"barrier": "gate", "locked": "yes"})
    for i, gid in enumerate(GATES):
        nodes[gid] = (90 * (i + 1), 100, locked[i % 2])
    nodes[18] = (750, 100, {"barrier": "gate", "access": "yes"})
    ways = [
        (100, [1, 2], {"highway": "residential"}),
        (101, [1, 3, *GATES, 18, 4, 2], {"highway": "footway"}),
        box_way(200, 30, 290, -30, 310, -10, {"building": "house"}, nodes),
    ]
    return write_city(tmp_path, nodes=nodes, ways=ways, district=box(-100, -100, 900, 200))


def _toilets_run(cfg: Path, osm: Path, base: Path) -> tuple:
    """The hand-made city's toilets measured and written by ``walkcover run`` into ``base/out``:
    ``(assessment, out)``, ``out`` the district's folder."""
    import walkcover as wc

    res = CliRunner().invoke(
        app,
        ["run", "--city", str(cfg), "--source", str(osm), "--out", str(base / "out"),
         "--no-cache", "--standard", "toilet", "--no-maps"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assessment = wc.assess(cfg, standard="toilet", source=osm, cache=False).assessment
    return assessment, base / "out" / "handmade" / "d1"


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """The gated city measured (toilets) and written by ``walkcover run``: ``(assessment, out)``,
    ``out`` the district's folder."""

    base = tmp_path_factory.mktemp("gated")
    cfg, osm = gated_city(base)
    return _toilets_run(cfg, osm, base)


def _edited(folder: Path, tmp_path: Path, change, *, indent: int | None = None) -> Path:
    """A copy of the district's ``run.json`` with `change` applied to its data (`indent`: written
    indented, one value a line, as walkcover writes it)."""
    data = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=indent), encoding="utf-8")
    return path


def _refused(path: Path, needle: str) -> None:
    """`path` (a tampered record) is refused with an error naming run.json, `needle` and the fix."""
    with pytest.raises(RunRecordError, match="run.json") as err:
        load_record(path)
    assert needle in str(err.value) and "walkcover run --overwrite" in str(err.value)


# --- the locked gates -----------------------------------------------------------------------------


def test_every_locked_gate_is_in_the_results_and_the_record(gated):
    assessment, folder = gated
    assert assessment.locked_gates == tuple(sorted(GATES))  # 7, ascending; not the open gate 18
    (note,) = [n for n in assessment.notes if "locked gate" in n.text]
    assert note.kind == "locked_gates" and note.text.startswith("7 locked gate(s)")
    assert "node/" not in note.text  # the note counts them; the list is kept whole, apart
    written = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert written["locked_gates"] == sorted(GATES)
    assert all(type(g) is int for g in written["locked_gates"])
    assert load_record(folder / "run.json").locked_gates == sorted(GATES)


def test_the_report_appendix_lists_every_locked_gate(gated):
    from walkcover.presentation.report import read_first

    assessment, _ = gated
    run = district_run(assessment, "d1")
    assert run.locked_gates == tuple(sorted(GATES))
    lines, appendix = read_first(run)
    (entry,) = [a for a in appendix if "locked gates" in str(a["text"])]
    assert entry["ids"] == [f"node/{g}" for g in sorted(GATES)]
    (line,) = [t for t in lines if "locked gates" in t]
    assert line.startswith("7 locked gates") and f"(OSM ids in appendix {entry['ref']}" in line
    assert "run.json" not in line and "first" not in line


def test_a_record_from_before_the_list_reads_and_its_report_says_the_note_was_cut(gated, tmp_path):
    """A run.json written before ``locked_gates`` (and ``standards_file``) were kept: it reads
    (version 1 still), and the appendix says its gates' note named the first five only."""
    from walkcover.presentation.report import read_first

    assessment, folder = gated
    old_text = (
        "7 locked gate(s) (access=no|private or locked=yes) cut the paths through them "
        "(node/11, node/12, node/13, node/14, node/15 …)"
    )

    def older(d: dict) -> None:
        del d["locked_gates"], d["standards_file"]
        d["notes"] = [{"text": old_text, "district": None, "standard": None, "kind": ""}]

    record = load_record(_edited(folder, tmp_path, older))
    assert record.locked_gates is None and record.standards_file is None
    run = dataclasses.replace(
        district_run(assessment, "d1"),
        locked_gates=record.locked_gates,
        standards_file=record.standards_file,
        notes=[type(assessment.notes[0])(old_text)],
    )
    lines, appendix = read_first(run)
    assert appendix[0]["ids"] == [
        *(f"node/{g}" for g in range(11, 16)),
        "… (the note names the first 5 only)",
    ]
    assert any("OSM ids, the first 5, in appendix A1" in line for line in lines)


@pytest.mark.parametrize(
    ("gates", "needle"),
    [
        (["11"], "locked_gates.0"),
        ([True], "locked_gates.0"),
        ([11.0], "locked_gates.0"),
        ([0], "locked_gates.0"),
        ([-11], "locked_gates.0"),
        ([11, 2**63], "locked_gates.1"),
        ([[11]], "locked_gates.0"),
        ({"11": 11}, "locked_gates"),
        ("11,12", "locked_gates"),
        ([1] * (MAX_LOCKED_GATES + 1), f"{MAX_LOCKED_GATES + 1:,} locked gates"),
    ],
    ids=["text", "bool", "float", "zero", "negative", "too-large", "nested", "object", "string",
         "too-many"],
)  # fmt: skip
def test_tampered_locked_gates_are_refused(gated, tmp_path, gates, needle):
    _, folder = gated
    _refused(_edited(folder, tmp_path, lambda d: d.update(locked_gates=gates)), needle)


def test_the_most_locked_gates_a_record_holds_still_read(gated, tmp_path):
    """`MAX_LOCKED_GATES` ids of 19 digits, written as walkcover writes them (indented, one a
    line): under every cap, and read back in full."""
    _, folder = gated
    many = list(range(10**18, 10**18 + MAX_LOCKED_GATES))
    path = _edited(folder, tmp_path, lambda d: d.update(locked_gates=many), indent=1)
    assert len(load_record(path).locked_gates or []) == MAX_LOCKED_GATES


# --- the features left out -----------------------------------------------------------------------

#: The disused toilets' node ids, in the order the file lists them (not ascending): more than the
#: five a note once named.
RETIRED = (47, 41, 45, 42, 46, 43, 44)


@pytest.fixture(scope="module")
def retired(tmp_path_factory):
    """A street y=0 from (0,0) to (800,0) with a live toilet at (0,5), seven toilets tagged
    disused along it (ids `RETIRED`) and a home at (290..310, -30..-10), measured (toilets) and
    written by ``walkcover run``: ``(assessment, out)``, ``out`` the district's folder."""

    base = tmp_path_factory.mktemp("retired")
    nodes: dict = {1: (0, 0), 2: (800, 0), 9: (0, 5, {"amenity": "toilets"})}
    for i, nid in enumerate(RETIRED):
        nodes[nid] = (100 * (i + 1), 5, {"amenity": "toilets", "disused": "yes"})
    ways = [
        (100, [1, 2], {"highway": "residential"}),
        box_way(200, 30, 290, -30, 310, -10, {"building": "house"}, nodes),
    ]
    cfg, osm = write_city(base, nodes=nodes, ways=ways, district=box(-100, -100, 900, 200))
    return _toilets_run(cfg, osm, base)


def test_every_feature_left_out_is_in_the_results_and_the_record(retired):
    assessment, folder = retired
    ids = [f"node/{n}" for n in RETIRED]
    assert sorted(assessment.left_out["toilet"]) == sorted(ids)  # all 7, not the first 5
    (note,) = [n for n in assessment.notes if n.kind == "left_out"]
    assert note.standard == "toilet" and note.text.startswith("toilet: 7 feature(s)")
    assert "node/" not in note.text and "left_out in run.json" in note.text
    written = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert written["left_out"] == {"toilet": list(assessment.left_out["toilet"])}
    assert load_record(folder / "run.json").left_out == written["left_out"]


def test_the_report_appendix_lists_every_feature_left_out(retired):
    from walkcover.presentation.report import read_first

    assessment, _ = retired
    run = district_run(assessment, "d1")
    lines, appendix = read_first(run)
    (entry,) = [a for a in appendix if "disused" in str(a["text"])]
    assert entry["ids"] == list(assessment.left_out["toilet"]) and len(entry["ids"]) == 7
    (line,) = [t for t in lines if "disused" in t]
    assert f"(OSM ids in appendix {entry['ref']}" in line
    assert "run.json" not in line and "first" not in line


def test_a_record_from_before_the_left_out_list_reads_and_says_the_note_was_cut(retired, tmp_path):
    """A run.json written before ``left_out`` was kept reads, and the appendix says its note
    named the first five only."""
    from walkcover.presentation.report import read_first

    assessment, folder = retired
    old_text = (
        "toilet: 7 feature(s) tagged disused or abandoned left out "
        "(node/47, node/41, node/45, node/42, node/46 …)"
    )

    def older(d: dict) -> None:
        del d["left_out"]
        d["notes"] = [{"text": old_text, "district": None, "standard": "toilet", "kind": ""}]

    record = load_record(_edited(folder, tmp_path, older))
    assert record.left_out is None
    run = dataclasses.replace(
        district_run(assessment, "d1"),
        left_out=record.left_out,
        notes=[type(assessment.notes[0])(old_text, standard="toilet")],
    )
    _, appendix = read_first(run)
    assert appendix[0]["ids"][-1] == "… (the note names the first 5 only)"
    assert len(appendix[0]["ids"]) == 6


@pytest.mark.parametrize(
    ("left_out", "needle"),
    [
        ({"toilet": [41]}, "left_out.toilet.0"),
        ({"toilet": ["node/0"]}, "left_out.toilet.0"),
        ({"toilet": ["way/abc"]}, "left_out.toilet.0"),
        ({"toilet": ["node/41", "<script>alert(1)</script>"]}, "left_out.toilet.1"),
        ({"toilet": ["tag/41"]}, "left_out.toilet.0"),
        ({"toilet": "node/41"}, "left_out.toilet"),
        ({"toilet": [["node/41"]]}, "left_out.toilet.0"),
        (["node/41"], "left_out"),
        ({"park": ["node/41"]}, "left_out.park is no standard the record measured"),
        ({"toilet": ["node/1"] * (MAX_LEFT_OUT + 1)}, f"{MAX_LEFT_OUT + 1:,} features left out"),
        ({"toilet": ["way/9999999999999999999"]}, "left_out.toilet.0"),  # past 2**63 - 1
    ],
    ids=["int", "zero", "not-a-number", "markup", "no-element", "string", "nested", "list",
         "other-standard", "too-many", "past-64-bit"],
)  # fmt: skip
def test_tampered_features_left_out_are_refused(retired, tmp_path, left_out, needle):
    _, folder = retired
    _refused(_edited(folder, tmp_path, lambda d: d.update(left_out=left_out)), needle)


def test_the_most_features_left_out_a_record_holds_still_read(retired, tmp_path):
    """`MAX_LEFT_OUT` ids of 19 digits, written indented as walkcover writes them: under every
    cap, and read back in full."""
    _, folder = retired
    many = {"toilet": [f"relation/{i}" for i in range(10**18, 10**18 + MAX_LEFT_OUT)]}
    path = _edited(folder, tmp_path, lambda d: d.update(left_out=many), indent=1)
    assert len((load_record(path).left_out or {})["toilet"]) == MAX_LEFT_OUT


# --- the standards file ---------------------------------------------------------------------------


def test_the_record_names_the_standards_file_and_its_digest(gated):
    from walkcover._paths import bundle_root

    _, folder = gated
    bundled = bundle_root() / "configs" / "standards" / "zhengzhou-2018.yaml"
    written = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert written["standards_file"] == {
        "id": "zhengzhou-2018",
        "title": "2018年度郑州市百城建设提质工程工作实施方案",
        "document": "郑政办〔2018〕28号",
        "issued": "2018-03-26",
        "file": "zhengzhou-2018.yaml",
        "bundled": True,
        "sha256": hashlib.sha256(bundled.read_bytes()).hexdigest(),
    }
    record = load_record(folder / "run.json")
    assert record.standards_file is not None
    assert record.standards_file.sha256 == written["standards_file"]["sha256"]
    assert f"SHA-256 {written['standards_file']['sha256']}" in " ".join(written["methods"])


def test_an_edited_copy_of_a_standards_file_is_told_apart(gated, tmp_path):
    """The same plan (its own id) in a planner's copy with one comment more: another file, by
    name and by digest, never its folder."""
    import walkcover as wc
    from walkcover._paths import bundle_root

    assessment, _ = gated
    copy = tmp_path / "folder-not-recorded" / "ours.yaml"
    copy.parent.mkdir()
    shutil.copy(bundle_root() / "configs" / "standards" / "zhengzhou-2018.yaml", copy)
    with copy.open("a", encoding="utf-8") as f:
        f.write("# our copy\n")
    ours = wc.study(assessment.city, standard="toilet", standards=copy, cache=False).rules
    data = record_data(dataclasses.replace(assessment, rules=ours), "d1")
    assert data["standards_file"]["id"] == "zhengzhou-2018"
    assert data["standards_file"]["file"] == "ours.yaml"
    assert data["standards_file"]["bundled"] is False
    assert data["standards_file"]["sha256"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert "folder-not-recorded" not in json.dumps(data, ensure_ascii=False)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda f: f.update(sha256="d2dd"), "standards_file.sha256"),
        (lambda f: f.update(sha256="Z" * 64), "standards_file.sha256"),
        (lambda f: f.update(sha256=12), "standards_file.sha256"),
        (lambda f: f.update(file="../../etc/passwd"), "standards_file.file"),
        (lambda f: f.update(file="C:\\plans\\ours.yaml"), "standards_file.file"),
        (lambda f: f.update(file="ours\n.yaml"), "standards_file.file"),
        (lambda f: f.update(file="x" * 300), "standards_file.file"),
        (lambda f: f.update(file=".."), "standards_file.file"),
        (lambda f: f.update(file="."), "standards_file.file"),
        (lambda f: f.update(file="ours\x9b31m.yaml"), "standards_file.file"),
        (lambda f: f.pop("id"), "standards_file.id"),
        (lambda f: f.update(bundled="yes"), "standards_file.bundled"),
    ],
    ids=["short-digest", "not-hex", "number", "path", "windows-path", "control", "long",
         "parent-folder", "this-folder", "c1-control", "no-id", "bundled-text"],
)  # fmt: skip
def test_a_tampered_standards_file_record_is_refused(gated, tmp_path, change, needle):
    _, folder = gated
    path = _edited(folder, tmp_path, lambda d: change(d["standards_file"]))
    with pytest.raises(RunRecordError, match="run.json") as err:
        load_record(path)
    assert needle in str(err.value)


def test_standards_built_in_memory_have_no_file(gated):
    from walkcover.config.standards import StandardSet

    assessment, _ = gated
    rules = StandardSet.model_validate(assessment.rules.model_dump())
    assert rules.file is None
    data = record_data(dataclasses.replace(assessment, rules=rules), "d1")["standards_file"]
    assert data["id"] == "zhengzhou-2018" and data["file"] is None and data["sha256"] is None


def test_a_standards_file_is_hashed_as_read(tmp_path):
    """The digest is of the file's bytes: the same rules with Windows line ends are another
    file (and still read alike)."""
    from walkcover._paths import bundle_root
    from walkcover.config.standards import load_standards

    bundled = bundle_root() / "configs" / "standards" / "gb50180-2018.yaml"
    crlf = tmp_path / "gb50180-2018.yaml"
    crlf.write_bytes(bundled.read_bytes().replace(b"\n", b"\r\n"))
    a, b = load_standards("gb50180-2018"), load_standards(crlf)
    assert a.model_dump() == b.model_dump()
    assert a.file is not None and b.file is not None
    assert a.file.sha256 == hashlib.sha256(bundled.read_bytes()).hexdigest()
    assert b.file.sha256 == hashlib.sha256(crlf.read_bytes()).hexdigest() != a.file.sha256
    assert (a.file.name, a.file.bundled, b.file.bundled) == ("gb50180-2018.yaml", True, False)
