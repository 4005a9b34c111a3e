"""The compiled plan for `sendWhisper`: the mutation's common case without the interpreter.

`compile_send` accepts a mutation whose only root field is `sendWhisper(input: $var)` selecting
plain fields of the payload, the whisper and the sender's and recipient's ids; `answer_send`
runs `send_sql.send_plain` (WeChat's content check first, when configured, then one statement),
writes the response Strawberry would have written and starts the offline notice after commit.
Anything it does not cover raises Fallback before a single write, and the interpreter answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import DocumentNode, FieldNode, OperationDefinitionNode, VariableNode

from src.db import CommitUncertain
from src.resolvers.notify import offline_notice_job
from src.resolvers.readplan import NotCompilable
from src.resolvers.send_sql import PlainSend, Sent, send_plain
from src.schema.context import run_in_background
from src.services import Services


class Fallback(Exception):
    """Let the interpreter answer this request."""


# Each plain output field, as the schema resolves it for the sender of a fresh, plain whisper.
_USER = {"id"}
_WHISPER: dict[str, Callable[[Sent], Any]] = {
    "id": lambda w: str(w.id),
    "content": lambda w: w.content,
    "isAnonymous": lambda w: w.anonymous,
    "createdAt": lambda w: w.created_at.isoformat(),
    "readAt": lambda _w: None,
    "revealedAt": lambda _w: None,
    "replyTo": lambda _w: None,
    "isMine": lambda _w: True,
}
_INPUT_KEYS = {"recipientId", "content", "anonymous", "replyToId", "idempotencyKey"}


@dataclass(frozen=True)
class Out:
    """One output key: a value, or nested outputs (None: the field's value is null)."""

    key: str
    name: str
    children: tuple[Out, ...] = ()


@dataclass(frozen=True)
class SendPlan:
    root_key: str
    variable: str
    payload: tuple[Out, ...]
    document: DocumentNode  # for the cost


def compile_send(op: OperationDefinitionNode, document: DocumentNode) -> SendPlan:
    """A plan for a validated mutation document, or NotCompilable."""
    roots = op.selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode):
        raise NotCompilable("root")
    root = roots[0]
    arguments = root.arguments or ()
    if root.name.value != "sendWhisper" or root.directives or len(arguments) != 1:
        raise NotCompilable("root")
    argument = arguments[0]
    if argument.name.value != "input" or not isinstance(argument.value, VariableNode):
        raise NotCompilable("inline input")
    payload = tuple(_outs(root, _payload_field))
    key = root.alias.value if root.alias else root.name.value
    return SendPlan(key, argument.value.name.value, payload, document)


def _outs(node: FieldNode, check: Callable[[FieldNode], tuple[Out, ...]]) -> list[Out]:
    outs = []
    for child in node.selection_set.selections if node.selection_set else ():
        if not isinstance(child, FieldNode) or child.directives or child.arguments:
            raise NotCompilable("selection")
        key = child.alias.value if child.alias else child.name.value
        outs.append(Out(key, child.name.value, check(child)))
    return outs


def _payload_field(node: FieldNode) -> tuple[Out, ...]:
    if node.name.value in ("__typename", "errors"):
        return ()  # errors is [] on success, whatever it selects
    if node.name.value == "whisper":
        return tuple(_outs(node, _whisper_field))
    raise NotCompilable(node.name.value)


def _whisper_field(node: FieldNode) -> tuple[Out, ...]:
    name = node.name.value
    if name in ("sender", "recipient"):
        return tuple(_outs(node, _user_field))
    if name in _WHISPER or name == "__typename":
        return ()
    raise NotCompilable(name)


def _user_field(node: FieldNode) -> tuple[Out, ...]:
    if node.name.value in _USER or node.name.value == "__typename":
        return ()
    raise NotCompilable(node.name.value)


def plain_send(plan: SendPlan, variables: dict[str, Any], claims: Any) -> PlainSend:
    """The send the variables ask for, when it is a plain one; else Fallback."""
    data = variables.get(plan.variable)
    if not isinstance(data, dict) or not set(data) <= _INPUT_KEYS:
        raise Fallback
    recipient, content = data.get("recipientId"), data.get("content")
    anonymous = data.get("anonymous", True)
    if data.get("replyToId") is not None or data.get("idempotencyKey") is not None:
        raise Fallback
    if not isinstance(recipient, str) or not isinstance(content, str):
        raise Fallback
    if not isinstance(anonymous, bool):
        raise Fallback
    return PlainSend(claims.user_id, claims.session_id, recipient, content, anonymous)


async def answer_send(
    services: Services, plan: SendPlan, variables: dict[str, Any], claims: Any
) -> bytes:
    sent = await send_plain(services, plain_send(plan, variables, claims))
    if sent is None:
        raise Fallback
    try:
        answer = _response(plan, sent, claims.user_id)
    except Exception as exc:  # it is written: falling back now would send it twice
        raise CommitUncertain from exc
    # As the interpreter's after-commit job (`whispers.delivery_notice`): a plain send is
    # always delivered, so an offline recipient may get a notice.
    if notice := offline_notice_job(services, sent.recipient_id):
        run_in_background(notice)
    return answer


def _response(plan: SendPlan, sent: Sent, viewer: uuid.UUID) -> bytes:
    payload: dict[str, Any] = {}
    for out in plan.payload:
        if out.name == "whisper":
            payload[out.key] = {o.key: _whisper_value(o, sent, viewer) for o in out.children}
        else:
            payload[out.key] = [] if out.name == "errors" else "WhisperPayload"
    return orjson.dumps({"data": {plan.root_key: payload}})


def _whisper_value(out: Out, sent: Sent, viewer: uuid.UUID) -> Any:
    if out.name == "__typename":
        return "Whisper"
    if out.name in ("sender", "recipient"):
        if out.name == "recipient" and not sent.recipient_shown:
            return None  # hidden from the sender (not discoverable, held): as user(id)
        uid = viewer if out.name == "sender" else sent.recipient_id
        return {o.key: str(uid) if o.name == "id" else "User" for o in out.children}
    return _WHISPER[out.name](sent)
