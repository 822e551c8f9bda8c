"""A district's figures do not depend on which other districts are measured with it: run alone, in
a list, or with the whole city, every home gets the same distance and status."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

import walkcover as wc
from walkcover.measures.gaps import district_service_areas


def test_one_by_one_equals_all_at_once(sample_results, sample_cache):
    together = sample_results
    pair = wc.assess("helsinki-sample", district="sample-nw,sample-se", cache_dir=sample_cache)
    assert list(pair.districts["slug"]) == ["sample-nw", "sample-se"]
    for slug in ("sample-nw", "sample-se"):
        alone = wc.assess("helsinki-sample", district=slug, cache_dir=sample_cache)
        for other in (together, pair):
            a = alone.demand.set_index("osm_id").sort_index()
            b = other.demand[other.demand["district_id"] == slug].set_index("osm_id").sort_index()
            assert list(a.index) == list(b.index) and len(a) > 10
            for std in alone.assessment.standards:
                np.testing.assert_allclose(
                    a[f"{std.id}_dist_m"], b[f"{std.id}_dist_m"], rtol=0, atol=1e-6, err_msg=std.id
                )
                assert list(a[f"{std.id}_status"]) == list(b[f"{std.id}_status"]), std.id
            cols = ["standard", "residents", "residents_covered_pct", "area_covered_pct",
                    "area_covered_euclid_pct", "facilities_in_reach"]  # fmt: skip
            s1 = alone.summary[cols].reset_index(drop=True)
            s2 = other.summary[other.summary["district"] == slug][cols].reset_index(drop=True)
            pd.testing.assert_frame_equal(s1, s2, check_exact=False, atol=1e-9)
            # the service areas too: the lattice and the grounds do not depend on where the
            # run's streets end (a district run's stop at its study area)
            did = alone.district_id(slug)
            sa1 = district_service_areas(alone.assessment, did)
            sa2 = district_service_areas(other.assessment, did)
            assert list(sa1["standard"]) == list(sa2["standard"])
            assert list(sa1["area_m2"]) == list(sa2["area_m2"]) and sa1["area_m2"].sum() > 0
            assert (
                shapely.area(
                    shapely.symmetric_difference(sa1.geometry.to_numpy(), sa2.geometry.to_numpy())
                ).max()
                < 1e-6
            )


def test_standards_on_one_thread_or_two_give_the_same_results(sample_cache, monkeypatch):
    from walkcover.assessment import study as assessment

    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(assessment, "MEASURE_THREADS", threads)
        monkeypatch.setattr(assessment, "THREADS_FROM_EDGES", 0)  # the sample is small
        runs.append(wc.assess("helsinki-sample", cache_dir=sample_cache))
    one, two = runs
    # the same columns in the same (standard) order, the same values, the same notes in order
    pd.testing.assert_frame_equal(
        pd.DataFrame(one.demand.drop(columns="geometry")),
        pd.DataFrame(two.demand.drop(columns="geometry")),
        check_exact=True,
    )
    pd.testing.assert_frame_equal(one.summary, two.summary, check_exact=True)
    assert [n.text for n in one.assessment.notes] == [n.text for n in two.assessment.notes]
    assert len(one.assessment.notes) > 3
