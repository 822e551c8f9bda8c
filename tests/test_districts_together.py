"""A district's figures do not depend on which other districts are measured with it: run alone, in
a list, or with the whole city, every home gets the same distance and status."""

from __future__ import annotations

import numpy as np
import pandas as pd

import walkcover as wc


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


def test_standards_on_one_thread_or_two_give_the_same_results(sample_cache, monkeypatch):
    from walkcover import assessment

    runs = []
    for threads in (1, 2):
        monkeypatch.setattr(assessment, "MEASURE_THREADS", threads)
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
