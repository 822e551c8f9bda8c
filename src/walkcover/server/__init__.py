"""``walkcover serve``: a local web app on the what-if scenarios (`walkcover.scenario`).

Pick a district and a standard, see the homes by distance band and the run's gaps, add sites by
clicking (snapped to the walkable street), drag and delete them, close existing facilities, undo,
ask the optimiser for sites, save, load and compare scenarios, export one to `walkcover report`;
two tabs on one scenario see each other's edits. The figures are the library's:
`walkcover.server.workspace` calls `walkcover.scenario` (edits, figures, official figure,
suggested sites) and `walkcover.api.Results.export_scenario`; the HTTP layer
(`walkcover.server.app`) holds no logic of its own. The JSON API is documented in docs/serve.md.

>>> import walkcover as wc
>>> from walkcover.server import Workspace, LocalServer
>>> run = wc.assess("helsinki-sample", district="sample-sw")           # doctest: +SKIP
>>> server = LocalServer(Workspace("out", results=run), port=0)        # doctest: +SKIP
>>> print(server.url); server.run()                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from walkcover.server.app import LocalServer, check_host, make_app, running
from walkcover.server.workspace import NotFoundError, ServeError, Workspace


def serve(
    plan: object,
    *,
    out: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_remote: bool = False,
    on_url: Callable[[str], None] = print,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Serve the web app on a run of `plan` until interrupted.

    The server listens first and `on_url` is told the address to open (with its random token);
    the run is then measured (or read from the cache) on a thread, the page showing its
    progress, and `progress` told each step.

    Parameters
    ----------
    plan
        A `walkcover.api.Study` (from `walkcover.api.study`).
    out
        The output folder; scenarios are saved in ``out/scenarios``.
    host, port, allow_remote
        Where to listen: 127.0.0.1 unless `allow_remote` (then any `host`); port 0 picks a
        free one.
    on_url
        Called once with the URL to open.
    progress
        Called with a label as each step of measuring starts.

    Raises
    ------
    ServeError
        A `host` other than the loopback without `allow_remote`, or a bad `port`.
    """
    from walkcover import api

    if not isinstance(plan, api.Study):
        raise ServeError(f"plan={plan!r}: give a walkcover.api.Study (walkcover.api.study(...))")

    def load(step: Callable[[str], None]) -> api.Results:
        def both(label: str) -> None:
            step(label)
            if progress is not None:
                progress(label)

        return api.measure(plan, progress=both)

    server = LocalServer(Workspace(out, load=load), host=host, port=port, allow_remote=allow_remote)
    on_url(server.url)
    server.run()


__all__ = [
    "LocalServer",
    "NotFoundError",
    "ServeError",
    "Workspace",
    "check_host",
    "make_app",
    "running",
    "serve",
]
