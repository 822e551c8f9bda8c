"""The layers import one way, inside `presentation` and `measures` too: an import inside a
function (walkcover's way of importing a heavy library late) cannot hide a cycle."""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("walkcover")


def test_imports_inside_functions_are_in_the_graph(graph):
    """`outputs` imports `maps` only inside functions (folium is heavy): the graph lint-imports
    checks still holds that import, so it cannot hide a cycle from the contracts."""
    assert graph.direct_import_exists(
        importer="walkcover.presentation.outputs", imported="walkcover.presentation.maps"
    )
    details = graph.get_import_details(
        importer="walkcover.presentation.outputs", imported="walkcover.presentation.maps"
    )
    assert details and all(d["line_contents"].startswith("from ") for d in details)


@pytest.mark.parametrize("package", ["walkcover.presentation", "walkcover.measures"])
def test_no_module_of_a_layer_imports_itself_back(graph, package):
    """No cycle between the modules of a package, function-level imports included (the record
    once imported `outputs`, which imports the record)."""
    modules = sorted(m for m in graph.find_children(package))
    cycles = []
    for m in modules:
        for n in graph.find_modules_directly_imported_by(m):
            if n in modules and graph.chain_exists(importer=n, imported=m):
                cycles.append((m, n))
    assert not cycles, cycles
