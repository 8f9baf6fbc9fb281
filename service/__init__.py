"""Web layer: the FastAPI application (:func:`service.main.create_app`).

Thin by design: routes validate and store uploads, create job records and hand jobs to a
runner (:mod:`workers.runner`); all science lives in :mod:`mer`.
"""
