"""Pathology foundation models as extractors: exact recipes, local weights, strict loading."""
