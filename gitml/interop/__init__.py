"""Moving a team's history between gitml and other trackers (DESIGN.md §9).

:mod:`gitml.interop.mlflow_store` reads MLflow's stores (file store, sqlite, tracking server)
into plain records without importing MLflow; :mod:`gitml.interop.importer` turns those records
into runs on the runs ref, experiment records, artifacts in the content store and registry tags.
"""
