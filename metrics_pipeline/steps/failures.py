"""A failed step, told in one line: shared by the runner and the run-failure alerts; a
step's problems, told once each."""

import re
from collections.abc import Sequence


def step_error(event) -> str:
    """What a person can act on: a Failure's description, else the innermost exception."""
    data = event.step_failure_data
    if data is None:
        return event.message or "failed"
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip() if error is not None else (event.message or "failed")


# How a Meta call names its client and account (`CallSite.describe`): client 'x', account act_1
_CLIENT_ACCOUNT = re.compile(
    r"client (?P<client>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"), account (?P<account>act_\w+)"
)


def distinct_problems(problems: Sequence[str]) -> list[str]:
    """One line per distinct problem, in order of first appearance: problems that differ only
    in the client and account they name become one line naming every client they hit, e.g.
    a refused token: `Meta API refused clients 'a', 'b' (accounts act_1, act_2), ad account:
    ... code 190`. Identical lines are told once, with how many times they came."""
    groups: dict[str, list[tuple[str, str] | None]] = {}
    for problem in problems:
        match = _CLIENT_ACCOUNT.search(problem)
        if match is None:
            groups.setdefault(problem, []).append(None)
        else:
            key = problem[: match.start()] + "\0" + problem[match.end() :]
            groups.setdefault(key, []).append((match["client"], match["account"]))
    lines = []
    for key, hits in groups.items():
        named = list(dict.fromkeys(hit for hit in hits if hit is not None))
        if not named:
            lines.append(key if len(hits) == 1 else f"{key} ({len(hits)} times)")
        elif len(named) == 1:
            client, account = named[0]
            lines.append(key.replace("\0", f"client {client}, account {account}"))
        else:
            clients = ", ".join(client for client, _ in named)
            accounts = ", ".join(account for _, account in named)
            lines.append(key.replace("\0", f"clients {clients} (accounts {accounts})"))
    return lines
