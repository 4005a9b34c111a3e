"""Document checks (SECURITY.md 1, 32): done once per document text, linear in its size, cached.

A document is parsed with the token limit (graphql-core stops at the first token over it and
refuses documents nested too deeply), then one walk measures every operation with fragments
expanded — depth, aliases, field selections, fragment spreads and how many selections of one
response name meet at one place — memoized per fragment, so a chain of fragments each spreading
the previous one twice costs one visit per fragment, not 2^n. Only a document within every limit
reaches graphql-core's validation rules, whose work those limits bound (OverlappingFieldsCanBe-
Merged compares every pair of same-named selections that meet: hence the pair budget).

The compiled path (src/schema/fastpath.py) and Strawberry (the `DocumentChecks` extension) share
one `DocumentChecker`, so a request is checked once whichever path answers it; variables never
change what is checked here (the cost and page sizes, which depend on them, are per request).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    validate,
)
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

CODE = "DOCUMENT_TOO_COMPLEX"
# Texts longer than this are checked but not cached (a cache entry keeps its text).
MAX_CACHED_TEXT = 64 * 1024


@dataclass(frozen=True)
class DocumentLimits:
    max_tokens: int
    max_depth: int
    max_aliases: int
    max_fragments: int  # fragment definitions in a document
    max_spreads: int  # fragment spreads of one operation, fragments expanded
    max_selections: int  # field selections of one operation, fragments expanded
    # Pairs of same-named selections meeting at one place (what field merging compares).
    max_merge_pairs: int


@dataclass(frozen=True)
class CheckedDocument:
    """A parsed document and its errors (none: it may run). `document` is None when it did not
    parse (a syntax error, too many tokens, nested too deeply)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]


class DocumentChecker:
    """Check document texts, at most once each while they stay in the cache."""

    def __init__(
        self,
        schema: GraphQLSchema,
        limits: DocumentLimits,
        rules: Sequence[type[ASTValidationRule]],
        *,
        cache_size: int = 512,
    ):
        self.schema = schema
        self.limits = limits
        self.rules = tuple(rules)
        self.cache_size = cache_size
        self.checks = 0  # documents actually checked (not answered from the cache): for tests
        self._cache: OrderedDict[str, CheckedDocument] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, text: str) -> CheckedDocument:
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        checked = self._check(text)
        if len(text) <= MAX_CACHED_TEXT:
            with self._lock:
                self._cache[text] = checked
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return checked

    def parse(self, text: str) -> DocumentNode:
        """The parsed document, checked and cached; raises its syntax error when it does not
        parse (the HTTP layer's question, src/graphql_http.py)."""
        checked = self.check(text)
        if checked.document is None:
            raise checked.errors[0].with_traceback(None)  # cached: never grow its traceback
        return checked.document

    def _check(self, text: str) -> CheckedDocument:
        self.checks += 1
        try:
            document = parse(text, max_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            return CheckedDocument(None, (error,))
        errors = tuple(measure(document, self.limits))
        if not errors:
            errors = tuple(validate(self.schema, document, self.rules))
        return CheckedDocument(document, errors)


def too_complex(message: str, limit: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": CODE, "limit": limit})


@dataclass
class _Shape:
    """What a selection set amounts to with its fragments expanded."""

    depth: int = 0
    aliases: int = 0
    selections: int = 0
    spreads: int = 0
    pairs: int = 0  # same-named pairs meeting at this set and below
    names: Counter[str] = field(default_factory=Counter)  # response names at this level


class _Walker:
    def __init__(self, document: DocumentNode):
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.shapes: dict[str, _Shape] = {}
        self.expanding: set[str] = set()

    def fragment(self, name: str) -> _Shape:
        # Memoized: a fragment's shape is the same wherever it is spread. An unknown or cyclic
        # fragment counts as empty here; validation refuses both.
        shape = self.shapes.get(name)
        if shape is None:
            definition = self.fragments.get(name)
            if definition is None or name in self.expanding:
                return _Shape()
            self.expanding.add(name)
            shape = self.selection_set(definition.selection_set)
            self.expanding.discard(name)
            self.shapes[name] = shape
        return shape

    def selection_set(self, node: SelectionSetNode | None) -> _Shape:
        shape = _Shape()
        for selection in node.selections if node else ():
            if isinstance(selection, FieldNode):
                shape.selections += 1
                shape.aliases += selection.alias is not None
                shape.names[(selection.alias or selection.name).value] += 1
                if selection.selection_set is not None:
                    child = self.selection_set(selection.selection_set)
                    # Introspection fields do not count towards depth (GraphiQL's schema
                    # query is deep); they still count for everything else.
                    if not selection.name.value.startswith("__"):
                        shape.depth = max(shape.depth, 1 + child.depth)
                    self._add(shape, child)
            else:
                if isinstance(selection, InlineFragmentNode):
                    child = self.selection_set(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    shape.spreads += 1
                    child = self.fragment(selection.name.value)
                else:  # pragma: no cover - the parser produces no other selection
                    continue
                shape.depth = max(shape.depth, child.depth)
                self._add(shape, child)
                shape.names.update(child.names)
        shape.pairs += sum(n * (n - 1) // 2 for n in shape.names.values() if n > 1)
        return shape

    @staticmethod
    def _add(into: _Shape, child: _Shape) -> None:
        into.aliases += child.aliases
        into.selections += child.selections
        into.spreads += child.spreads
        into.pairs += child.pairs


def measure(document: DocumentNode, limits: DocumentLimits) -> Iterator[GraphQLError]:
    """The limit errors of a parsed document (none: it may go on to validation)."""
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    if len(fragments) > limits.max_fragments:
        yield too_complex(
            f"The document defines {len(fragments)} fragments; at most "
            f"{limits.max_fragments} are allowed.",
            "fragments",
        )
        return
    walker = _Walker(document)
    aliases = 0
    shapes: list[tuple[str, _Shape]] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            shape = walker.selection_set(definition.selection_set)
            name = definition.name.value if definition.name else "anonymous"
            if shape.depth > limits.max_depth:
                # Strawberry's QueryDepthLimiter's words, which clients may already match.
                yield GraphQLError(
                    f"'{name}' exceeds maximum operation depth of {limits.max_depth}",
                    [definition],
                )
            aliases += shape.aliases
            shapes.append((f"Operation '{name}'", shape))
    # Unused fragments are validated too (and refused as unused): measured all the same.
    shapes += [(f"Fragment '{f.name.value}'", walker.fragment(f.name.value)) for f in fragments]
    if aliases > limits.max_aliases:
        # MaxAliasesLimiter's words.
        yield GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}")
    for what, shape in shapes:  # the first definition over a limit says enough
        if shape.spreads > limits.max_spreads:
            yield too_complex(
                f"{what} spreads fragments {shape.spreads} times once expanded; at most "
                f"{limits.max_spreads} are allowed.",
                "spreads",
            )
        elif shape.selections > limits.max_selections:
            yield too_complex(
                f"{what} selects {shape.selections} fields once fragments are expanded; at "
                f"most {limits.max_selections} are allowed.",
                "selections",
            )
        elif shape.pairs > limits.max_merge_pairs:
            yield too_complex(
                f"{what} selects the same names at the same place too often "
                f"({shape.pairs} pairs to merge; at most {limits.max_merge_pairs}).",
                "merges",
            )
        else:
            continue
        return


class DocumentChecks(SchemaExtension):
    """Strawberry's parse and validate steps through the shared checker: the parsed document
    and its validation errors come from its cache (replaces MaxTokensLimiter, the depth and
    alias rules, ParserCache and ValidationCache)."""

    def __init__(self, checker: DocumentChecker):
        self.checker = checker
        self.checked: CheckedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        # A document that does not parse is parsed again by Strawberry with the same token
        # limit, which raises the same syntax error where Strawberry expects it.
        ctx.parse_options["max_tokens"] = self.checker.limits.max_tokens
        if ctx.graphql_document is None and ctx.query:
            self.checked = self.checker.check(ctx.query)
            ctx.graphql_document = self.checked.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if self.checked is not None and ctx.pre_execution_errors is None:
            # A new list each time: later steps may replace it, never the cached tuple.
            ctx.pre_execution_errors = list(self.checked.errors)
        yield
