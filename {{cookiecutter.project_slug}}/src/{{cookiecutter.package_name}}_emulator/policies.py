"""IAM policy statements as AWS evaluates them: the one evaluator of the offline emulator and the IAM tests.

Semantics (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?``; ``Resource`` case-sensitively;
- condition operators ``String*``, ``Arn*``, ``Bool``, ``Null``, with ``IfExists`` and ``ForAnyValue:``;
  a key absent from the request makes a positive operator false and a negated one true
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html);
- a resource-based policy's ``Principal`` is ``*``, ``{"AWS": "*"}``, ARNs, account ids or account
  roots (``principal_matches``).

Anything else raises NotImplementedError, so a new construct is not silently misread.

    statement = Statement.parse({"Effect": "Deny", "Action": "s3:*", "Resource": "*",
                                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    statement.matches("s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"})  # False
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    condition: dict[str, dict[str, Any]]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Statement:
        """An identity-policy statement (a resource policy's ``Principal`` is read by the caller)."""
        unknown = set(raw) - {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
        if unknown:
            raise NotImplementedError(f"statement keys {unknown}")

        def strings(value: Any) -> tuple[str, ...]:
            return tuple(value) if isinstance(value, list) else (value,)

        return cls(
            effect=raw["Effect"],
            actions=strings(raw.get("Action", raw.get("NotAction"))),
            not_action="NotAction" in raw,
            resources=strings(raw.get("Resource", raw.get("NotResource", "*"))),
            not_resource="NotResource" in raw,
            condition=raw.get("Condition") or {},
        )

    def matches(self, action: str, resource: str, context: dict[str, Any]) -> bool:
        action_hit = any(glob(pattern, action, case=False) for pattern in self.actions)
        resource_hit = any(glob(pattern, resource, case=True) for pattern in self.resources)
        return (
            action_hit != self.not_action
            and resource_hit != self.not_resource
            and all(
                condition(op, key, values, context)
                for op, block in self.condition.items()
                for key, values in block.items()
            )
        )


@cache
def _pattern(pattern: str, case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), 0 if case else re.IGNORECASE)


def glob(pattern: str, value: str, case: bool) -> bool:
    """IAM's wildcard match (``*`` any run, ``?`` one character)."""
    return bool(_pattern(pattern, case).match(value))


_TESTS = {
    "StringEquals": lambda a, v: a == v,
    "StringEqualsIgnoreCase": lambda a, v: a.lower() == v.lower(),
    "StringLike": lambda a, v: glob(v, a, case=True),
    "ArnEquals": lambda a, v: a == v,
    "ArnLike": lambda a, v: glob(v, a, case=True),
    "Bool": lambda a, v: a.lower() == v,
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
SUPPORTED_OPERATORS = frozenset({*_TESTS, *_NEGATED, "Null"})


def condition(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    """Whether one condition key of one operator holds for the request ``context``."""
    values = [
        str(v).lower() if isinstance(v, bool) else str(v)
        for v in (expected if isinstance(expected, list) else [expected])
    ]
    quantifier, _, operator = operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    if operator not in SUPPORTED_OPERATORS:  # even when the key is absent: never misread silently
        raise NotImplementedError(f"condition operator {operator}")
    if quantifier not in ("", "ForAnyValue"):
        raise NotImplementedError(f"condition quantifier {quantifier}")
    present = key in context
    if operator == "Null":
        return (not present) == (values[0] == "true")
    if not present:
        return if_exists or operator.startswith(("StringNot", "ArnNot"))
    actual = context[key]
    actuals = [str(a) for a in (actual if isinstance(actual, list) else [actual])]
    if operator in _NEGATED:
        test = _TESTS[_NEGATED[operator]]
        return not any(test(a, v) for a in actuals for v in values)
    return any(_TESTS[operator](a, v) for a in actuals for v in values)


def unsupported_operators(statements: list[dict[str, Any]]) -> set[str]:
    """Condition operators in ``statements`` this module cannot evaluate (to report, not to guess)."""
    found = {
        op.rpartition(":")[2].removesuffix("IfExists") for s in statements for op in s.get("Condition") or {}
    }
    return found - SUPPORTED_OPERATORS


def principal_matches(principal: Any, arn: str, account: str) -> bool:
    """Whether a resource policy's ``Principal`` names the caller ``arn`` (of ``account``).

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    Service and federated principals never match a signed request of an account's principal.
    """
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        raise NotImplementedError(f"Principal {principal!r}")
    named = principal.get("AWS", [])
    for entry in named if isinstance(named, list) else [named]:
        if entry in ("*", arn, account, f"arn:aws:iam::{account}:root"):
            return True
    return False
