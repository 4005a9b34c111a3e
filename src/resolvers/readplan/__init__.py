"""Compiled reads: declarations (model), the generic compiler, and the whole statement."""

from src.resolvers.readplan.model import (
    Catalog,
    Each,
    Filter,
    Given,
    Lookup,
    Many,
    NotCompilable,
    One,
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
    "Each",
    "Filter",
    "Given",
    "Lookup",
    "Many",
    "NotCompilable",
    "One",
    "ReadPlan",
    "Refused",
    "Same",
    "Scalar",
    "Scope",
    "Sel",
    "Source",
    "bind_args",
    "bind_given",
    "compile_read",
]
