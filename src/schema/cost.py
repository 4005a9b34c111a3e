"""Static query cost (SECURITY.md 3): computed from the document before any resolver runs.

A connection (a field taking `first`) costs `2 + first × (its selection)`, any other object
field `1 + (its selection)`, a scalar or enum 0, and each mutation root field `10 + (its
selection)` (times `first` when it answers a page, like aiSearch). Fragments count wherever they
are spread; every branch of an abstract type counts, so the figure is an upper bound of the work
the operation can cause.

The cost depends on variables (`first: $n`), which graphql-core's validation rules never see and
whose results are cached by document text: so it is computed by an extension right after
validation, per request, with the request's variables (a walk of a document the token limit keeps
small, memoized per fragment).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
)
from strawberry.extensions import SchemaExtension

from src.resolvers.pagination import DEFAULT_PAGE

CONNECTION_BASE = 2
OBJECT = 1
MUTATION = 10


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> int:
    """The cost of the operation a request selects (0 when it selects none: execution refuses)."""
    operation = _select(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return _Walker(schema, document, variables or {}).selection(operation.selection_set, root)


def _select(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name and o.name.value == name]
    return operations[0] if len(operations) == 1 else None


class _Walker:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]):
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.fragment_costs: dict[str, int] = {}
        self.expanding: set[str] = set()

    def selection(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType) -> int:
        return sum(self.fields(selection_set, parent))

    def fields(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType
    ) -> Iterator[int]:
        """The cost of each field of a selection set, fragments expanded in place."""
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                yield self.field(node, parent)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                yield self.selection(node.selection_set, target or parent)
            elif isinstance(node, FragmentSpreadNode):
                yield self.fragment(node.name.value)

    def fragment(self, name: str) -> int:
        # Memoized: a fragment's cost does not depend on where it is spread, and without this a
        # few fragments spreading each other twice would make the walk exponential.
        if name not in self.fragment_costs:
            definition = self.fragments.get(name)
            if definition is None or name in self.expanding:  # validation refuses both
                return 0
            self.expanding.add(name)
            target = self.schema.get_type(definition.type_condition.name.value)
            cost = self.selection(definition.selection_set, target) if target else 0
            self.expanding.discard(name)
            self.fragment_costs[name] = cost
        return self.fragment_costs[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename, or a field validation already refused
            return 0
        named = get_named_type(definition.type)
        children = 0 if is_leaf_type(named) else self.selection(node.selection_set, named)
        size = (
            self.page_size(node, definition.args["first"]) if "first" in definition.args else None
        )
        if parent is self.schema.mutation_type:
            # Each root field of a mutation is a write: a fixed price on top of what it selects
            # (a page of it, for a mutation answering a page, like aiSearch).
            return MUTATION + (size or 1) * children
        if is_leaf_type(named):
            return 0
        if size is not None:
            return CONNECTION_BASE + size * children
        # A connection-typed field without `first` (aiSearch's `results`) is one page whose
        # size an ancestor already counted.
        return OBJECT + children

    def page_size(self, node: FieldNode, argument: Any) -> int:
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            value: Any = None
            if isinstance(arg.value, IntValueNode):
                value = int(arg.value.value)
            elif isinstance(arg.value, VariableNode):
                value = self.variables.get(arg.value.name.value)
            # Out of range never gets here (PageSizeLimit refuses it first); anything that is
            # not an int is refused by coercion at execution, so it counts as the default.
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        default = getattr(argument, "default_value", None)
        if isinstance(default, int) and not isinstance(default, bool) and default > 0:
            return default
        return DEFAULT_PAGE


class CostLimit(SchemaExtension):
    """Refuse an operation over the budget with COST_LIMIT; in development, report the cost of
    every operation in the response's `extensions.cost`."""

    def __init__(self, *, budget: int, report: bool):
        self.budget = budget
        self.report = report
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if not ctx.pre_execution_errors and ctx.graphql_document is not None:
            self.cost = operation_cost(
                ctx.schema._schema, ctx.graphql_document, ctx.operation_name, ctx.variables
            )
            if self.cost > self.budget:
                ctx.pre_execution_errors = [cost_error(self.cost, self.budget)]
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.cost} if self.report and self.cost is not None else {}


def cost_error(cost: int, budget: int) -> GraphQLError:
    return GraphQLError(
        f"Query cost {cost} exceeds the budget of {budget}: ask for smaller pages (`first`) "
        "or fewer nested connections.",
        extensions={"code": "COST_LIMIT", "cost": cost, "budget": budget},
    )
