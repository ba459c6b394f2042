"""Fill the state machine's ``${Name}`` tokens exactly as CloudFormation ``DefinitionSubstitutions`` does.

One helper for both places the ASL file runs: the deploy CLI checks a rendering before upload, and
the offline harness renders the definition moto's CloudFormation leaves empty. CloudFormation
replaces each ``${Name}`` with the value as plain text (no JSON escaping) and refuses a definition
that names a substitution it was not given.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# ${Name}: letters, digits and underscores, as CloudFormation accepts for substitution keys.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class DefinitionError(ValueError):
    """A definition that CloudFormation would refuse: a token without a value, or invalid JSON."""


def placeholders(asl_text: str) -> set[str]:
    """Every ``${Name}`` token in the definition text."""
    return set(PLACEHOLDER.findall(asl_text))


def render_definition(asl_text: str, substitutions: Mapping[str, object]) -> str:
    """The definition with every ``${Name}`` replaced by ``str(substitutions[Name])``.

    Raises DefinitionError when a token has no substitution or the result is not JSON.
    Extra substitutions are ignored, as CloudFormation does.
    """
    missing = sorted(placeholders(asl_text) - set(substitutions))
    if missing:
        raise DefinitionError(f"no DefinitionSubstitutions value for: {', '.join(missing)}")
    rendered = PLACEHOLDER.sub(lambda match: str(substitutions[match.group(1)]), asl_text)
    try:
        json.loads(rendered)
    except json.JSONDecodeError as error:
        raise DefinitionError(
            f"the definition is not valid JSON after substitution (a value with a quote or backslash?): {error}"
        ) from error
    return rendered
