"""What a validated query selects, as the executor will answer it: a plain `Sel` tree.

Clients do not send the bare selection a compiler would like: Apollo Client adds `__typename`
to every selection set, Relay spreads a named fragment per component, both use aliases,
variables with defaults, `@include`/`@skip` and documents holding several operations. This
module applies GraphQL's CollectFields (spec 6.3.2, as graphql-core's executor does) to one
operation: directives evaluated for the request's variables, fragments (named and inline) on
the concrete type spliced in place, fields with the same response key merged, in the order the
executor writes them — so a compiled answer has the interpreter's keys in the interpreter's
order. Anything outside that (fragments on interfaces or unions, other directives, fields of
abstract type) raises NotCompilable and the interpreter answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_input_type,
    is_leaf_type,
    type_from_ast,
    value_from_ast,
)

from src.resolvers.readplan import NotCompilable, Sel

_CONDITIONS = ("include", "skip")


@dataclass(frozen=True)
class Shape:
    """A checked document with its operation chosen; what every plan for it starts from."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    defaults: dict[str, Any]  # variable -> its default value, for those that have one
    switches: tuple[str, ...]  # variables read by @include/@skip: a plan is per their values


def shape_of(schema: GraphQLSchema, document: DocumentNode, operation: str | None) -> Shape:
    """The operation a request runs (by `operationName` among several), or NotCompilable."""
    ops, fragments = [], {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            ops.append(definition)
        elif isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = definition
        else:
            raise NotCompilable("definition")
    if operation is not None:
        ops = [o for o in ops if o.name and o.name.value == operation]
    kinds = (OperationType.QUERY, OperationType.MUTATION)
    if len(ops) != 1 or ops[0].operation not in kinds or ops[0].directives:
        raise NotCompilable("operation")
    op = ops[0]
    defaults: dict[str, Any] = {}
    for variable in op.variable_definitions or ():
        if variable.default_value is not None:
            if op.operation is OperationType.MUTATION:
                raise NotCompilable("variable defaults")  # the compiled send reads raw input
            var_type = type_from_ast(schema, variable.type)
            if not is_input_type(var_type):
                raise NotCompilable("variable type")
            defaults[variable.variable.name.value] = value_from_ast(
                variable.default_value, var_type
            )
    switches = sorted(_switch_variables(op.selection_set, fragments, set()))
    return Shape(document, op, fragments, defaults, tuple(switches))


def _switch_variables(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> set[str]:
    found: set[str] = set()
    for node in selection_set.selections if selection_set else ():
        for directive in node.directives or ():
            for argument in directive.arguments or ():
                if isinstance(argument.value, VariableNode):
                    found.add(argument.value.name.value)
        if isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                found |= _switch_variables(fragments[name].selection_set, fragments, seen)
        elif isinstance(node, FieldNode | InlineFragmentNode):
            found |= _switch_variables(node.selection_set, fragments, seen)
    return found


def selections(schema: GraphQLSchema, shape: Shape, values: Mapping[str, Any]) -> tuple[Sel, ...]:
    """The root selections of a query, for variables `values` (defaults applied)."""
    root = schema.query_type
    if root is None or shape.operation.operation is not OperationType.QUERY:
        raise NotCompilable("not a query")
    collected: dict[str, list[FieldNode]] = {}
    _collect(shape, shape.operation.selection_set, root, values, collected, set())
    return _sels(schema, shape, collected, root, values)


def _collect(
    shape: Shape,
    selection_set: SelectionSetNode,
    parent: GraphQLObjectType,
    values: Mapping[str, Any],
    out: dict[str, list[FieldNode]],
    visited: set[str],
) -> None:
    for node in selection_set.selections:
        if not _included(node, values):
            continue
        if isinstance(node, FieldNode):
            key = node.alias.value if node.alias else node.name.value
            out.setdefault(key, []).append(node)
        elif isinstance(node, InlineFragmentNode):
            if node.type_condition is not None:
                _same_type(node.type_condition.name.value, parent)
            _collect(shape, node.selection_set, parent, values, out, visited)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name in visited:
                continue
            visited.add(name)
            fragment = shape.fragments.get(name)
            if fragment is None:
                raise NotCompilable("fragment")
            _same_type(fragment.type_condition.name.value, parent)
            _collect(shape, fragment.selection_set, parent, values, out, visited)
        else:
            raise NotCompilable("selection")


def _same_type(condition: str, parent: GraphQLObjectType) -> None:
    # On an object type, validation only lets through fragments that can apply: the type
    # itself, or an interface or union holding it. Only the first is compiled.
    if condition != parent.name:
        raise NotCompilable("fragment on an abstract type")


def _included(node: Any, values: Mapping[str, Any]) -> bool:
    included = True
    for directive in node.directives or ():
        name = directive.name.value
        if name not in _CONDITIONS:
            raise NotCompilable(f"@{name}")
        arguments = tuple(directive.arguments or ())
        if len(arguments) != 1 or arguments[0].name.value != "if":
            raise NotCompilable(f"@{name}")
        value = arguments[0].value
        flag: object
        if isinstance(value, BooleanValueNode):
            flag = value.value
        elif isinstance(value, VariableNode):
            flag = values.get(value.name.value)
        else:
            raise NotCompilable(f"@{name}")
        if not isinstance(flag, bool):
            raise NotCompilable(f"@{name}")  # the interpreter reports the bad variable
        if flag is (name == "skip"):
            included = False
    return included


def _sels(
    schema: GraphQLSchema,
    shape: Shape,
    collected: dict[str, list[FieldNode]],
    parent: GraphQLObjectType,
    values: Mapping[str, Any],
) -> tuple[Sel, ...]:
    out = []
    for key, nodes in collected.items():
        first = nodes[0]
        name = first.name.value
        if name == "__typename":
            out.append(Sel(key=key, name=name, on=parent.name))
            continue
        definition = parent.fields.get(name)
        if definition is None:
            raise NotCompilable(name)  # introspection, or not in the schema
        named = get_named_type(definition.type)
        children: tuple[Sel, ...] = ()
        if isinstance(named, GraphQLObjectType):
            sub: dict[str, list[FieldNode]] = {}
            visited: set[str] = set()
            for node in nodes:
                if node.selection_set is not None:
                    _collect(shape, node.selection_set, named, values, sub, visited)
            children = _sels(schema, shape, sub, named, values)
        elif not is_leaf_type(named):
            raise NotCompilable(f"{name}: abstract type")
        args = {a.name.value: _value(a.value) for a in first.arguments or ()}
        out.append(Sel(key=key, name=name, args=args, children=children, on=parent.name))
    return tuple(out)


def _value(node: ValueNode) -> Any:
    if isinstance(node, VariableNode):
        return ("$", node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode | BooleanValueNode | EnumValueNode):
        return node.value  # an enum by its GraphQL name, as a variable would carry it
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, ObjectValueNode):
        # An input object written inline (`filter: {city: "上海", minAge: $min}`); the field
        # that takes one coerces it as the executor does (fastpath_discover).
        return {f.name.value: _value(f.value) for f in node.fields}
    raise NotCompilable("argument value")
