"""How a figure was made, in words a planner can check (``walkcover explain``)."""

from __future__ import annotations

from collections import Counter

from walkcover.assessment import Assessment
from walkcover.measures.facilities import describe
from walkcover.measures.indicators import CONTEXTS
from walkcover.presentation.figures import (
    count_text,
    figure_text,
    metres_text,
    pct_text,
    setting_text,
    target_text,
    value_text,
)
from walkcover.presentation.record import osm_date_text, source_name

#: Section headings of `explanation`'s text.
HEADINGS = ("Facilities", "Residents", "Denominator land", "Figures", "Notes")


def _completeness(pct: float) -> str:
    if pct != pct:
        return "completeness unknown (no residential land mapped and no known total)"
    return (
        f"≈ {figure_text(pct, decimals=0, unit='%')} complete "
        "(footprint on residential land, residents against known totals)"
    )


#: How a facility is reached, in words (`walkcover.measures.entrances`).
_REACHED = {
    "outline": "along their outline (open, not fenced)",
    "entrances": "only through their public gates or paths through the fence (fenced)",
    "outline (fenced; no entrance mapped)": "along their outline (fenced, but no entrance mapped)",
    "point": "at their point",
}


def _f(v: float, unit: str = "%") -> str:
    """A share (`pct_text`: never ``0.0%`` where some are covered), or another figure in `unit`."""
    return pct_text(v, unit=unit) if unit == "%" else figure_text(v, unit=unit)


def explanation(
    result: Assessment, district_id: str | None = None, standard_id: str | None = None
) -> str:
    """A plain-text account of how one district × standard figure of `result` was made (by
    default the first of its summary)."""
    rows = result.summary
    if district_id is not None:
        rows = rows[rows["district_id"] == district_id]
    if standard_id is not None:
        rows = rows[rows["standard"] == standard_id]
    if not len(rows):
        raise KeyError(f"district {district_id!r} × standard {standard_id!r} was not measured")
    row = rows.iloc[0]
    std = next(s for s in result.standards if s.id == row["standard"])
    did = row["district_id"]
    fac = result.facilities[result.facilities["standard"] == std.id]
    in_d = fac[fac["in_district"] == did]
    counted = fac[fac["counts"].astype(bool)]
    lines = [
        f"{row['district_name']} / {row['district_name_en']} ({row['district']}) — {std.name} {std.name_zh}",
        f"Standard: within {metres_text(std.threshold_m)} walking; {std.context_applied}; target {target_text(std.target_pct, unit='%')} "
        f"({std.target_basis or 'plan'})",
        f"Plan: {std.citation.section} {std.citation.text}  National: {std.citation.national or '—'}",
        # the file's name, never its folder; the data's own date, never the file's
        f"Source: {source_name(result.source)} ({osm_date_text(result.data_date)}); "
        f"working CRS {result.crs.to_string()}",
        "",
        "Facilities",
        f"  selectors: {'; '.join(describe(s) for s in std.selectors)}",
    ]
    for how, n in Counter(counted["matched_by"]).most_common():
        lines.append(f"  found by {how}: {count_text(n)} counted in the study area")
    lines.append(
        f"  in the district: {count_text(in_d['counts'].astype(bool).sum())} counted; "
        f"{count_text(row['facilities_in_reach'])} can serve it (inside or within the search limit, snapped)"
    )
    for reason, n in Counter(fac.loc[~fac["counts"].astype(bool), "reason"]).most_common():
        lines.append(f"  left out: {count_text(n)} × {reason}")
    if std.use_entrances and "reached_by" in counted:
        for how, n in Counter(counted["reached_by"]).most_common():
            lines.append(f"  reached {_REACHED.get(how, how)}: {count_text(n)}")
    lines += [
        "",
        "Residents",
        f"  {count_text(row['demand_units'])} demand units ({row['demand_model']}), {count_text(row['residents'])} residents",
        f"  model: {row['population_model']}",
        f"  buildings mapped: {_completeness(row['building_completeness_pct'])}",
        f"  not snapped to a street within {metres_text(result.city.config.network.max_snap_m)}: "
        f"{count_text(row['unsnapped_units'])}; unreachable: {count_text(row['unreachable_units'])}; "
        f"beyond the search limit: {count_text(row['beyond_search_units'])}",
        "",
        "Denominator land",
        f"  {row['denominator']}: {value_text(row['land_km2'], unit='km²')} km² "
        f"({'; '.join(describe(s) for s in getattr(result.rules.land, row['denominator']))})",
        "",
        "Figures",
        f"  official (straight-line {metres_text(std.threshold_m)} circles ∩ land ÷ land): {_f(row['area_covered_euclid_pct'])}",
        f"  land within walking distance ({metres_text(result.rules.land.cell_m)} grid):      {_f(row['area_covered_pct'])}",
        f"  residents within walking distance:                 {_f(row['residents_covered_pct'])}",
        f"  detour loss (official − walking land):             {_f(row['detour_loss_pp'], ' pp')}",
    ]
    if row["residents_covered_safe_pct"] == row["residents_covered_safe_pct"]:
        lines.append(
            f"  residents with a safe route (no barrier crossing but at crossings): {_f(row['residents_covered_safe_pct'])}"
        )
    if std.choice:
        lines.append(
            f"  residents with two or more facilities within {metres_text(std.threshold_m)} walking "
            f"(each counted once, at its nearest entrance): {_f(row['residents_choice_pct'])}"
        )
    rule = std.access
    if rule is not None:
        how = (
            f"Gaussian decay, σ = {metres_text(rule.decay.sigma_m)}"
            if rule.decay.kind == "gaussian"
            else "stepped decay "
            + ", ".join(f"≤ {metres_text(b)} × {setting_text(w)}" for b, w in rule.decay.steps)
        )
        lines += [
            f"  capacity per 1,000 residents (E2SFCA: each facility's {rule.capacity_unit} ÷ the "
            f"residents who can walk to it within {metres_text(std.threshold_m)}, {how}, summed over the "
            f"facilities each home reaches): mean {_f(row['access_mean_per_1000'], '')}, lowest "
            f"10% {_f(row['access_p10_per_1000'], '')}",
            f"  capacities: OSM tags capacity, beds or school:capacity, a planner's file, else "
            f"{setting_text(rule.default_capacity)} {rule.capacity_unit} ({rule.capacity_basis}); "
            f"{count_text(row['facilities_default_capacity'])} of the facilities in "
            "reach use that default",
        ]
        if rule.norm_per_1000 is not None:
            lines.append(
                f"  residents below the norm of {setting_text(rule.norm_per_1000)} {rule.capacity_unit} per "
                f"1,000 ({rule.norm_basis}): {_f(row['residents_below_norm_pct'])}"
            )
    if std.context_thresholds_m:
        for c in CONTEXTS:
            lines.append(
                f"  {c}: {_f(row[f'street_km_{c}'], ' km')} of street, {_f(row[f'street_covered_pct_{c}'])} covered "
                f"at {metres_text(std.context_thresholds_m.get(c, std.threshold_m))}"
            )
    lines += _life_circle_lines(result, std, str(did))
    notes = [n.text for n in result.notes if n.concerns(row["district"], std.id)]
    if notes:
        lines += ["", "Notes", *[f"  {n}" for n in notes]]
    return "\n".join(lines)


def _life_circle_lines(result: Assessment, std, district_id: str) -> list[str]:
    """How the life circle `std` belongs to is made, with the district's figure (none where the
    standard is in no tier, or the run measured its tier only in part)."""
    tier = std.life_circle
    if tier is None:
        return []
    ids = result.rules.life_circle_tiers().get(tier, [])
    names = ", ".join(result.rules.standards[i].name for i in ids)
    lines = [
        "",
        f"Life circle (GB 50180-2018, {tier}-minute)",
        f"  a home's circle is complete when each of these is within its own distance: {names}",
    ]
    table = result.life_circles
    rows = (
        table[(table["district_id"] == district_id) & (table["tier_min"] == tier)]
        if table is not None
        else table
    )
    if rows is None or not len(rows):
        lines.append("  not measured in this run: it left out some of the tier's standards")
        return lines
    r = rows.iloc[0]
    lines.append(f"  residents whose circle is complete: {_f(r['complete_pct'])}")
    if r["most_missing"]:
        lack = result.rules.standards[r["most_missing"]]
        lines.append(
            f"  most often missing: {lack.name} {lack.name_zh} "
            f"({count_text(r['most_missing_residents'])} residents lack it)"
        )
    return lines
