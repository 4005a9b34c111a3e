"""Compiled reads: declarations (model), the generic compiler, and the whole statement."""

from src.resolvers.readplan.model import (
    Catalog,
    Lookup,
    Many,
    NotCompilable,
    One,
    Scalar,
    Scope,
    Sel,
    Source,
)
from src.resolvers.readplan.statement import ReadPlan, Refused, bind_args, compile_read

__all__ = [
    "Catalog",
    "Lookup",
    "Many",
    "NotCompilable",
    "One",
    "ReadPlan",
    "Refused",
    "Scalar",
    "Scope",
    "Sel",
    "Source",
    "bind_args",
    "compile_read",
]
