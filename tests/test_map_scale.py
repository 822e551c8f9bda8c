"""A district map of 50,000 homes (issue: city scale): the sample's largest district's homes laid
side by side twenty times, each copy keeping its figures, stays within the size budget per home and
opens in Chromium with every standard and view switchable and no error. How fast it opens is
measured in docs/benchmarks.md, never here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import open_offline

DISTRICT = "sample-se"
HOMES = 50_000
#: Bytes a home may take in the page for all the standards (its footprint once, a byte of band per
#: standard and view, an index into a short table of walks), and what the page carries besides
#: (Leaflet, the scripts, the legend, the facilities, gaps and streets of one district).
BYTES_PER_HOME = 150
FIXED_BYTES = 3_000_000


@pytest.fixture(scope="module")
def big_page(sample_results, tmp_path_factory):
    """The district's homes copied in a grid of tiles until there are 50,000, with every per-home
    figure of the run (bands, walks, nearest facility) copied with them."""
    from walkcover.presentation.maps import district_map
    from walkcover.presentation.web_map import save_map

    a = sample_results.assessment
    mine = (a.demand["district_id"] == DISTRICT).to_numpy()
    homes = a.demand[mine]
    copies = -(-HOMES // len(homes))
    x0, y0, x1, y1 = shapely.total_bounds(homes.geometry.to_numpy())
    w, h = x1 - x0 + 50, y1 - y0 + 50
    side = int(np.ceil(np.sqrt(copies)))
    tiles = []
    for k in range(copies):
        dx, dy = (k % side) * w, (k // side) * h
        tile = homes.copy()
        shift = np.array([dx, dy])
        tile["geometry"] = shapely.transform(homes.geometry.to_numpy(), lambda xy, s=shift: xy + s)
        tile["osm_id"] = [f"{o}#{k}" for o in homes["osm_id"]]
        tiles.append(tile)
    others = a.demand[~mine]
    demand = pd.concat([*tiles, others], ignore_index=True)
    demand = demand.set_geometry("geometry", crs=a.demand.crs)
    passes = {
        sid: replace(
            p, nearest=np.concatenate([np.tile(p.nearest[mine], copies), p.nearest[~mine]])
        )
        for sid, p in a.passes.items()
    }
    rows = np.concatenate([np.tile(np.flatnonzero(mine), copies), np.flatnonzero(~mine)])
    big = replace(a, demand=demand, passes=passes, demand_snaps=a.demand_snaps.take(rows))
    n = int((demand["district_id"] == DISTRICT).sum())
    assert n >= HOMES
    path = tmp_path_factory.mktemp("big-map") / "map.html"
    save_map(district_map(big, DISTRICT), path)
    return path, n, big


def test_a_50000_home_map_stays_within_its_budget(big_page):
    path, n, _ = big_page
    size = path.stat().st_size
    assert size < FIXED_BYTES + BYTES_PER_HOME * n, (size, size / n)
    assert size < 8_000_000  # the budget for a district map of the L city


def test_a_50000_home_map_opens_with_every_standard_switchable(big_page, browser):
    path, n, big = big_page
    page, errors, _ = open_offline(browser, path)
    try:
        assert page.evaluate("() => walkcover.homes._g.n") == n  # every home, once
        radios = page.locator(".leaflet-control-layers-base input[type=radio]")
        assert radios.count() >= len(big.standards)
        shown = []
        for i in range(radios.count()):
            radios.nth(i).check()
            shown.append(page.evaluate("() => walkcover.homes._std"))
        assert sorted(shown) == list(range(radios.count()))  # each standard and view, in turn
        assert errors == []
    finally:
        page.close()
