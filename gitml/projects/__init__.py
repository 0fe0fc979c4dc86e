"""Projects: run an entry point with typed parameters in a known environment, as a run.

:mod:`gitml.projects.spec` reads the descriptor (``gitml.yaml``'s ``project:`` or an MLflow
``MLproject``), :mod:`gitml.projects.env` builds and caches environments, and
:mod:`gitml.projects.run` runs one entry point as a run (``gitml run``).
"""
