"""The public status page: HTML, Statuspage-compatible JSON, an Atom feed and badges, read from
the monitor's store (``monitor.store``'s read side only; ARCHITECTURE §2).

    store ──► source (reads) ──► model (public view) ──► html / api / feeds / svg ──► responses
                                  cache: one generation per change of the store

Entry points: :func:`statuspage.app.create_app` and ``questcity statuspage``
(:mod:`statuspage.cli`).
"""
