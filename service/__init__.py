"""The HTTP edge: app factory, settings, pydantic schemas, error mapping, blueprints.

pydantic lives here and in no other package. ``service.pipeline`` is the rank path
and has no Flask import.
"""
