"""Agave's models: attrs classes, one module per resource, all re-exported here."""

from .common import AgaveModel, converter, parse_agave_datetime, structure

__all__ = ["AgaveModel", "converter", "parse_agave_datetime", "structure"]
