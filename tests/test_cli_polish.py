"""The command line's finish (issue #31 part 6): ``--version``, the standard ids in ``--help``,
"did you mean" for a mistyped name, progress lines of ``report``, and the libraries' log levels."""

from __future__ import annotations

import importlib.metadata
import logging
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import walkcover.cli as cli
from walkcover._errors import WalkcoverError
from walkcover.cli import app
from walkcover.config.standards import load_standards

runner = CliRunner()
WIDE = {"COLUMNS": "250"}  # Rich lays the help out to this width: every id on one line


def flat(text: str) -> str:
    return " ".join(text.split())


# --version ---------------------------------------------------------------------------------------


def test_version_prints_the_installed_package_version():
    expected = f"walkcover {importlib.metadata.version('walkcover')}"
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == expected
    # the same through `python -m walkcover`, as an installed console script would run
    done = subprocess.run(
        [sys.executable, "-m", "walkcover", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


# the standard ids in --help ----------------------------------------------------------------------

COMMANDS_WITH_A_STANDARD = ["run", "batch", "explain", "site", "import"]


@pytest.mark.parametrize("command", COMMANDS_WITH_A_STANDARD)
def test_help_lists_the_bundled_standard_ids(command):
    ids = list(load_standards().standards)
    assert len(ids) > 3
    res = runner.invoke(app, [command, "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    text = flat(res.stdout)
    assert ", ".join(ids) in text, text
    assert "{standard_ids}" not in text


def test_help_reads_the_ids_from_the_standards_file_not_from_a_list(monkeypatch):
    """The ids come from `load_standards` when the help is shown: another standards file, other
    ids (none of the plan's)."""
    fake = SimpleNamespace(id="sauna-plan", standards={"sauna": None, "ice_hole": None})
    monkeypatch.setattr("walkcover.config.standards.load_standards", lambda *a, **k: fake)
    cli.standard_ids_text.cache_clear()
    try:
        text = flat(runner.invoke(app, ["run", "--help"], env=WIDE).stdout)
    finally:
        cli.standard_ids_text.cache_clear()
    assert "Ids: sauna, ice_hole (bundled sauna-plan;" in text
    assert "toilet" not in text


# did you mean ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--standard", "toliet"], "did you mean --standard toilet?"),
        # only the wrong item is changed; a name (Chinese or English) leads to its id
        (["--standard", "park,prak"], "did you mean --standard park,park?"),
        (["--standard", "公厕"], "did you mean --standard toilet?"),
        (["--district", "sample-nx"], "did you mean --district sample-nw?"),
        (["--district", "Sample district SW,sample-nx"],
         "did you mean --district Sample district SW,sample-nw?"),
    ],
)  # fmt: skip
def test_a_mistyped_name_gets_did_you_mean_exit_2_and_nothing_written(tmp_path, args, hint):
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["run", "--city", "helsinki-sample", "--out", str(out), "--no-cache", *args]
    )
    assert res.exit_code == 2, res.output
    text = flat(res.stderr)
    assert text.startswith("error: ") and text.endswith(hint), text
    # the library's own words stay: the value received and the valid choices
    assert ("unknown standard" in text) or ("matches no district" in text)
    assert not out.exists() or not any(out.rglob("*"))


def test_a_mistyped_city_gets_did_you_mean(tmp_path):
    res = runner.invoke(
        app, ["run", "--city", "helsinki-sampel", "--out", str(tmp_path / "o"), "--no-cache"]
    )
    assert res.exit_code == 2
    text = flat(res.stderr)
    assert "no bundled cities config named 'helsinki-sampel'" in text
    assert text.endswith("did you mean --city helsinki-sample?"), text


def test_nothing_is_suggested_when_nothing_is_close(tmp_path):
    res = runner.invoke(
        app,
        ["run", "--city", "helsinki-sample", "--standard", "library", "--out", str(tmp_path / "o"),
         "--no-cache"],
    )  # fmt: skip
    assert res.exit_code == 2
    assert "did you mean" not in res.stderr
    assert "unknown standard 'library'" in flat(res.stderr)


def test_explain_suggests_the_one_district_it_takes(sample_cache):
    res = runner.invoke(
        app,
        ["explain", "--city", "helsinki-sample", "--district", "Sample distrct SW", "--standard",
         "park", "--cache-dir", str(sample_cache)],
    )  # fmt: skip
    assert res.exit_code == 2
    assert flat(res.stderr).endswith("did you mean --district sample-sw?")


# report's progress lines -------------------------------------------------------------------------


def test_report_prints_progress_lines_on_stderr_unless_quiet(tmp_path):
    from hostile import hostile_city

    cfg, _ = hostile_city(tmp_path)
    common = ["--city", str(cfg), "--out", str(tmp_path / "out")]
    ran = runner.invoke(app, ["run", *common, "--no-cache", "--standard", "toilet", "--no-maps"])
    assert ran.exit_code == 0, ran.output
    res = runner.invoke(app, ["report", *common])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("report: ")]
    assert lines[0].startswith("report: "), lines
    assert lines[-1].startswith("report: 2 district report(s) and the city page written in ")
    # a line per district as its report is begun, then the city page
    each = [line for line in lines if line.endswith(("1/2", "2/2"))]
    assert len(each) == 2 and "(d1) 1/2" in each[0] and "(d2) 2/2" in each[1], lines
    assert "report: city page index.html" in lines
    assert "report: " not in res.stdout  # the files written go to stdout, progress to stderr
    quiet = runner.invoke(app, ["-q", "report", *common, "--overwrite"])
    assert quiet.exit_code == 0, quiet.output
    assert "report: " not in quiet.stderr


# log levels -----------------------------------------------------------------------------------


@pytest.fixture
def font_tools_at_debug():
    """A library that lowered its own level when imported (as ``distributed`` does)."""
    logger = logging.getLogger("fontTools")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(before)


def _log_and_stop(**_kwargs: object) -> None:
    """Stands in for `cli._preflight`: logs as a library and as walkcover would, then stops the
    command before anything is read."""
    for name in ("pyogrio", "fontTools.subset", "walkcover.sources.cache"):
        logger = logging.getLogger(name)
        logger.debug("%s debug line", name)
        logger.info("%s info line", name)
        logger.warning("%s warning line", name)
    raise WalkcoverError("stopped by the test")


@pytest.mark.parametrize(
    ("flags", "shown", "hidden"),
    [
        ([], ["pyogrio warning", "fontTools.subset warning", "walkcover.sources.cache warning"],
         ["info line", "debug line"]),
        (["-v"], ["pyogrio info", "fontTools.subset info", "walkcover.sources.cache info"],
         ["debug line"]),
        (["-vv"], ["walkcover.sources.cache debug", "pyogrio info"],
         ["pyogrio debug", "fontTools.subset debug"]),
        (["-vvv"], ["pyogrio debug", "fontTools.subset debug", "walkcover.sources.cache debug"],
         []),
        (["-q"], [], ["warning line", "info line", "debug line"]),
    ],
)  # fmt: skip
def test_libraries_log_warnings_only_unless_verbose(
    tmp_path, monkeypatch, font_tools_at_debug, flags, shown, hidden
):
    font_tools = font_tools_at_debug
    monkeypatch.setattr(cli, "_preflight", _log_and_stop)
    args = ["run", "--city", "helsinki-sample", "--out", str(tmp_path / "o"), "--no-cache"]
    res = runner.invoke(app, [*flags, *args])
    assert res.exit_code == 2, res.output
    assert "error: stopped by the test" in res.stderr
    for text in shown:
        assert f"{text} line" in res.stderr, (text, res.stderr)
    for text in hidden:
        assert text not in res.stderr, (text, res.stderr)
    # the levels are the process's again once the command is over (a notebook, a test runner)
    assert font_tools.level == logging.DEBUG
    assert logging.getLogger("walkcover").level == logging.NOTSET
    assert cli._log_handler not in logging.getLogger().handlers


def test_log_levels_table():
    assert cli.log_levels(verbose=0, quiet=False) == (logging.WARNING, logging.WARNING)
    assert cli.log_levels(verbose=1, quiet=False) == (logging.INFO, logging.INFO)
    assert cli.log_levels(verbose=2, quiet=False) == (logging.DEBUG, logging.INFO)
    assert cli.log_levels(verbose=5, quiet=False) == (logging.DEBUG, logging.DEBUG)
    assert cli.log_levels(verbose=0, quiet=True) == (logging.ERROR, logging.ERROR)


@pytest.mark.skipif(sys.platform != "linux", reason="a file size limit (RLIMIT_FSIZE) of Linux's")
def test_gdals_own_error_lines_are_left_out_unless_verbose(tmp_path):
    """A GeoPackage that cannot be written (here: a file size limit): GDAL's own ERROR lines
    (SQL of several KB when a disk fills up) do not come before walkcover's one-line error,
    unless -v asks for them."""
    import os
    import textwrap

    cache = tmp_path / "cache"
    args = ["run", "--city", "helsinki-sample", "--district", "sample-nw", "--standard", "toilet",
            "--cache-dir", str(cache)]  # fmt: skip
    warm = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "warm")])
    assert warm.exit_code == 0, warm.output  # the OSM layers cached: no text for the reader
    code = textwrap.dedent(
        """
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, no signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        from walkcover.cli import entry
        sys.argv = ["walkcover", *sys.argv[1:]]
        entry()
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "CPL_LOG"}
    said = {}
    for flags in ((), ("-v",)):
        out = tmp_path / f"out{len(flags)}"
        done = subprocess.run(
            [sys.executable, "-c", code, *flags, *args, "--out", str(out)],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        said[flags] = done.stdout + done.stderr
    assert "writing coverage.gpkg failed" in said[()]
    assert not [line for line in said[()].splitlines() if line.startswith("ERROR")], said[()]
    assert [line for line in said[("-v",)].splitlines() if line.startswith("ERROR")]


def test_a_tmpdir_that_cannot_be_written_is_said(tmp_path):
    """Python puts temporary files elsewhere, without a word, when TMPDIR cannot be written: the
    CLI says so (the PBF reader's text is half a gigabyte on a city)."""
    import os

    env = {**os.environ, "TMPDIR": str(tmp_path / "missing")}
    done = subprocess.run(
        [sys.executable, "-m", "walkcover", "run", "--city", "no-such-city", "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    said = " ".join((done.stdout + done.stderr).split())
    assert f"TMPDIR '{tmp_path / 'missing'}' cannot be written" in said, said
    assert "temporary files go to" in said
