"""Which jobs would a GitLab pipeline contain? A small evaluator of ``workflow:rules`` and ``rules``.

Covers what .gitlab-ci.yml uses, with GitLab's documented semantics
(https://docs.gitlab.com/ee/ci/jobs/job_rules.html, https://docs.gitlab.com/ee/ci/yaml/#ruleschanges):
- rules are tried in order, the first match decides; no match means the job is not added;
- ``if``: ``$VAR``, ``"literal"``, ``==``, ``!=``, ``&&`` (binds tighter than ``||``), parentheses;
  an undefined variable is null, a bare ``$VAR`` is true when defined and non-empty;
- ``changes``: globs matched like Ruby's ``File.fnmatch`` with PATHNAME|DOTMATCH|EXTGLOB (``*`` stops at
  ``/``, ``**/`` spans directories, ``{a,b}`` alternatives). Without ``compare_to`` the diff is the
  push's (against the previous push of the branch, or the MR target in MR pipelines); when there is
  no such diff (new branch, schedule, web) ``changes`` is always true. ``compare_to`` diffs against
  that ref instead.
Anything else raises NotImplementedError so a new construct is not silently misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RESERVED = {
    "stages",
    "workflow",
    "variables",
    "default",
    "include",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


class _GitLabLoader(yaml.SafeLoader):
    """Understands ``!reference [job, key]`` (resolved later)."""


_GitLabLoader.add_constructor(
    "!reference", lambda loader, node: {"!reference": loader.construct_sequence(node)}
)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(Path(path).read_text(), Loader=_GitLabLoader)


def resolve(config: dict[str, Any], value: Any, depth: int = 0) -> Any:
    """``!reference [job, key, ...]`` replaced by what it names, nested references included (GitLab
    allows 10 levels); a reference inside a list is spliced into it, as GitLab does for scripts."""
    if depth > 10:
        raise NotImplementedError("more than 10 levels of !reference")
    if isinstance(value, dict) and set(value) == {"!reference"}:
        target: Any = config
        for key in value["!reference"]:
            target = target[key]
        return resolve(config, target, depth + 1)
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            resolved = resolve(config, item, depth)
            is_reference = isinstance(item, dict) and set(item) == {"!reference"}
            out.extend(resolved if is_reference and isinstance(resolved, list) else [resolved])
        return out
    return value


def job_setting(config: dict[str, Any], job: str, key: str) -> Any:
    """A job's own ``key``, else the first of its ``extends`` that has it (later extends win, as in GitLab)."""
    if key in config[job]:
        return resolve(config, config[job][key])
    extends = config[job].get("extends", [])
    for parent in reversed(extends if isinstance(extends, list) else [extends]):
        found = job_setting(config, parent, key)
        if found is not None:
            return found
    return None


@dataclass
class Pipeline:
    """What GitLab knows when it creates a pipeline."""

    source: str  # push, merge_request_event, schedule, web
    branch: str | None = "main"
    default_branch: str = "main"
    # The push's diff (or the MR's diff); None when GitLab has none (new branch, schedule, web).
    changed: list[str] | None = None
    # Diffs against refs for compare_to, e.g. {"refs/heads/main": [...]}.
    changed_vs: dict[str, list[str]] = field(default_factory=dict)
    open_merge_request: bool = False

    def variables(self) -> dict[str, str]:
        values = {"CI_PIPELINE_SOURCE": self.source, "CI_DEFAULT_BRANCH": self.default_branch}
        if self.source == "merge_request_event":
            values["CI_MERGE_REQUEST_TARGET_BRANCH_NAME"] = self.default_branch
        elif self.branch:
            values["CI_COMMIT_BRANCH"] = self.branch
        if self.open_merge_request and self.branch:
            values["CI_OPEN_MERGE_REQUESTS"] = "group/project!1"
        return values


# ------------------------------------------------------------------ if expressions

TOKEN = re.compile(r"\s*(\$[A-Za-z_][A-Za-z0-9_]*|\"[^\"]*\"|'[^']*'|==|!=|&&|\|\||\(|\)|=~|!~)")


def _tokens(expression: str) -> list[str]:
    tokens, position = [], 0
    expression = expression.strip()
    while position < len(expression):
        match = TOKEN.match(expression, position)
        if not match:
            raise NotImplementedError(f"cannot parse rules:if {expression!r} at {expression[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    if any(t in ("=~", "!~") for t in tokens):
        raise NotImplementedError("regex matches are not supported by this evaluator")
    return tokens


def evaluate_if(expression: str, variables: dict[str, str]) -> bool:
    tokens = _tokens(expression)
    position = 0

    def value(token: str) -> str | None:
        if token.startswith("$"):
            return variables.get(token[1:])
        return token[1:-1]

    def operand() -> bool:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            result = disjunction()
            position += 1  # ")"
            return result
        left = value(token)
        if position < len(tokens) and tokens[position] in ("==", "!="):
            operator, right = tokens[position], value(tokens[position + 1])
            position += 2
            return (left == right) if operator == "==" else (left != right)
        return bool(left)

    def conjunction() -> bool:
        nonlocal position
        result = operand()
        while position < len(tokens) and tokens[position] == "&&":
            position += 1
            result = operand() and result
        return result

    def disjunction() -> bool:
        nonlocal position
        result = conjunction()
        while position < len(tokens) and tokens[position] == "||":
            position += 1
            result = conjunction() or result
        return result

    return bool(disjunction())


# ------------------------------------------------------------------ changes


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    out, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:[^/]*/)*")
            index += 3
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        elif pattern[index] == "{":
            end = pattern.index("}", index)
            out.append("(?:" + "|".join(re.escape(p) for p in pattern[index + 1 : end].split(",")) + ")")
            index = end + 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out) + r"\Z")


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: variables.get(m.group(1), ""), text)


def changes_match(changes: Any, pipeline: Pipeline, variables: dict[str, str]) -> bool:
    if isinstance(changes, list):
        changes = {"paths": changes}
    patterns = [glob_to_regex(_expand(p, variables)) for p in changes["paths"]]
    if "compare_to" in changes:
        ref = _expand(changes["compare_to"], variables)
        if ref not in pipeline.changed_vs:
            raise NotImplementedError(f"the test gives no diff against {ref}")
        files = pipeline.changed_vs[ref]
    elif pipeline.changed is None:
        return True
    else:
        files = pipeline.changed
    return any(p.match(f) for p in patterns for f in files)


# ------------------------------------------------------------------ rules and jobs


def first_match(rules: list[dict[str, Any]], pipeline: Pipeline) -> dict[str, Any] | None:
    variables = pipeline.variables()
    for rule in rules:
        unknown = set(rule) - {"if", "changes", "when", "allow_failure", "variables"}
        if unknown:
            raise NotImplementedError(f"rule keys {unknown}")
        if "if" in rule and not evaluate_if(rule["if"], variables):
            continue
        if "changes" in rule and not changes_match(rule["changes"], pipeline, variables):
            continue
        return rule
    return None


def job_names(config: dict[str, Any]) -> list[str]:
    return [name for name in config if name not in RESERVED and not name.startswith(".")]


def pipeline_jobs(config: dict[str, Any], pipeline: Pipeline) -> dict[str, str]:
    """Job name -> when (on_success, manual) of every job the pipeline would contain."""
    workflow = config.get("workflow", {}).get("rules")
    if workflow is not None:
        rule = first_match(workflow, pipeline)
        if rule is None or rule.get("when") == "never":
            return {}
    jobs = {}
    for name in job_names(config):
        rules = config[name].get("rules")
        if rules is None:
            jobs[name] = config[name].get("when", "on_success")
            continue
        rule = first_match(rules, pipeline)
        if rule is not None and rule.get("when", "on_success") != "never":
            jobs[name] = rule.get("when", "on_success")
    return jobs


# ------------------------------------------------------------------ credentials (issue 22)

DIGEST = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[\w][\w.-]*)?@sha256:[0-9a-f]{64}")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# Commands that fetch or build code: none may run where a token exists.
INSTALLS = re.compile(
    r"\b(pip3? install|python3? -m pip|apk add|apt-get|apt install|curl|wget|docker build|npm|uv )"
)
# The one way a credentialed job runs a command (ci/with-aws.sh: an allowlisted environment).
WRAPPER = "sh ci/with-aws.sh "


def credentialed_jobs(config: dict[str, Any]) -> list[str]:
    """Jobs that receive an identity token (``id_tokens``, own or inherited)."""
    return [name for name in job_names(config) if job_setting(config, name, "id_tokens")]


def feeders(config: dict[str, Any], jobs: list[str]) -> set[str]:
    """Jobs whose artifacts ``jobs`` run (``needs``, transitively), outside ``jobs``."""
    found: set[str] = set()
    todo = list(jobs)
    while todo:
        for need in job_setting(config, todo.pop(), "needs") or []:
            name = need if isinstance(need, str) else need["job"]
            if name not in found and name not in jobs:
                found.add(name)
                todo.append(name)
    return found


def _lines(config: dict[str, Any], job: str) -> list[str]:
    lines = []
    for key in ("before_script", "script", "after_script"):
        value = job_setting(config, job, key) or []
        lines += value if isinstance(value, list) else [value]
    return [str(line) for line in lines]


def _images(config: dict[str, Any], job: str) -> list[str]:
    image = job_setting(config, job, "image")
    services = job_setting(config, job, "services") or []
    refs = [image, *services]
    return [ref if isinstance(ref, str) else ref.get("name", "") for ref in refs if ref is not None]


def _variables_used(config: dict[str, Any], job: str) -> set[str]:
    texts = [*_lines(config, job), *_images(config, job)]
    texts += [str(v) for v in (job_setting(config, job, "variables") or {}).values()]
    return {name for text in texts for name in VARIABLE.findall(text)}


def credential_problems(config: dict[str, Any], allowed_variables: set[str]) -> list[str]:
    """Why a job that holds AWS credentials, or one whose artifacts it runs, could run code that a
    pipeline variable, an unpinned image or an install chooses; [] when none can (issue 22)."""
    jobs = credentialed_jobs(config)
    problems = []
    for job in jobs:
        environment = job_setting(config, job, "environment") or {}
        if not isinstance(environment, dict) or environment.get("deployment_tier") != "production":
            problems.append(f"{job}: holds a token outside a production (protected) environment")
        for line in _lines(config, job):
            if INSTALLS.search(line):
                problems.append(f"{job}: installs or builds code where the token exists: {line}")
            if not line.startswith(WRAPPER):
                problems.append(f"{job}: runs outside ci/with-aws.sh (the whole job environment): {line}")
    for job in [*jobs, *sorted(feeders(config, jobs))]:
        for ref in _images(config, job):
            if not DIGEST.fullmatch(ref):
                problems.append(f"{job}: image {ref} is not pinned by digest")
        for name in sorted(_variables_used(config, job) - allowed_variables):
            problems.append(f"{job}: takes ${name}, which a pipeline variable can set")
    return problems
