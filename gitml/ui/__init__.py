"""``gitml ui``: a local, read-only web app over the runs ref, the registry tags and the content store.

:mod:`gitml.ui.views` builds what each page shows (plain dicts, also the JSON endpoints'
answers); :mod:`gitml.ui.server` serves them with starlette, Jinja2 and uvicorn (the ``[ui]``
extra), imported only by the ``gitml ui`` command. docs/ui.md has the pages and endpoints.
"""
