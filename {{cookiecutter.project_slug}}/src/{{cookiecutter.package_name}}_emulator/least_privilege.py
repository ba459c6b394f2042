"""Least privilege from the run itself: which statements of the stack's roles the run needed.

``report(identity_policies.LEDGER)`` reads what enforcement recorded: for each role that signed at
least one request, each Allow statement of its identity policies is

- **necessary** when it was the only statement allowing some request (removing it breaks the run),
- **redundant** when it allowed requests, but each of them was also allowed by another statement,
- **unneeded** when it allowed nothing in this run (a candidate for removal, or a path the run did
  not take: tuning, a failed update's rollback; AWS's own ``.sync`` rules (events:PutRule...) are
  never called offline).

Roles that signed nothing offline are listed apart, not flagged statement by statement.

    rows = report(identity_policies.LEDGER)
    write_table(rows, run_dir / "least-privilege.md")
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .identity_policies import Ledger, StatementRef


@dataclass(frozen=True)
class Row:
    statement: StatementRef
    verdict: str  # necessary, redundant, unneeded
    allowed: int  # requests it allowed
    only_allower: int  # requests no other statement allowed
    example: str = ""  # one action on one resource it allowed (alone, when necessary)


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    silent_roles: list[str]  # enforced roles that signed no request
    unmapped: dict[str, int]  # "principal service:operation" -> refusals
    denied: dict[str, int]  # "principal action resource" -> refusals

    def unneeded(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "unneeded"]

    def necessary(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == "necessary"]


def report(ledger: Ledger, enforced: set[str] | None = None) -> Report:
    """The verdict for every Allow statement of each role that signed a request."""
    allowed, alone = Counter[StatementRef](), Counter[StatementRef]()
    example: dict[StatementRef, str] = {}
    with ledger._lock:
        records = list(ledger.allowed.items())
        statements = {role: list(refs) for role, refs in ledger.statements.items()}
        unmapped = {f"{p} {op}": n for (p, op), n in ledger.unmapped.items()}
        denied = {f"{p} {a} {r}": n for (p, a, r), n in ledger.denied.items()}
    for (_, action, resource, allowers), count in records:
        for ref in allowers:
            allowed[ref] += count
            example.setdefault(ref, f"{action} {resource}")
        if len(allowers) == 1:
            alone[allowers[0]] += count
            example[allowers[0]] = f"{action} {resource}"
    rows = []
    for role in sorted(statements):
        for ref, effect in statements[role]:
            if effect != "Allow":
                continue
            verdict = "necessary" if alone[ref] else "redundant" if allowed[ref] else "unneeded"
            rows.append(Row(ref, verdict, allowed[ref], alone[ref], example.get(ref, "")))
    silent = sorted(set(enforced or ()) - set(statements))
    return Report(rows, silent, unmapped, denied)


def summary(result: Report) -> list[str]:
    """A few lines for the run's output."""
    lines = [
        f"least privilege: {len(result.necessary())} statements necessary, {len(result.unneeded())} allowed "
        f"nothing this run"
        + (f" ({', '.join(str(r.statement) for r in result.unneeded())})" if result.unneeded() else "")
    ]
    if result.unmapped:
        lines.append(f"not mapped offline (refused): {', '.join(sorted(result.unmapped))}")
    return lines


def write_table(result: Report, path: Path) -> Path:
    """The full table as Markdown."""
    lines = [
        "# Least privilege of this run",
        "",
        "| statement | verdict | requests allowed | only allower of | example |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.statement} | {r.verdict} | {r.allowed} | {r.only_allower} | `{r.example}` |"
        for r in result.rows
    ]
    if result.silent_roles:
        lines += ["", "Roles that signed no request offline (not judged):", ""]
        lines += [f"- {role}" for role in result.silent_roles]
    for title, entries in (("Refused as not mapped offline", result.unmapped), ("Refused", result.denied)):
        if entries:
            lines += ["", f"{title}:", ""] + [f"- {k} ({n}x)" for k, n in sorted(entries.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
