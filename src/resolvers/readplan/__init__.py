"""Compiled reads: declarations (model), the generic compiler, and the whole statement."""

from src.resolvers.readplan.model import (
    Catalog,
    Filter,
    Given,
    Lookup,
    Many,
    NotCompilable,
    One,
    Rows,
    Same,
    Scalar,
    Scope,
    Sel,
    Source,
)
from src.resolvers.readplan.statement import (
    ReadPlan,
    Refused,
    bind_args,
    bind_given,
    compile_read,
)

__all__ = [
    "Catalog",
    "Filter",
    "Given",
    "Lookup",
    "Many",
    "NotCompilable",
    "One",
    "ReadPlan",
    "Refused",
    "Rows",
    "Same",
    "Scalar",
    "Scope",
    "Sel",
    "Source",
    "bind_args",
    "bind_given",
    "compile_read",
]
