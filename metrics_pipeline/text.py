"""Text from outside the project, made fit to show a person: one line, nothing a terminal
would act on, and short.

Meta's error messages reach the terminal, the logs, exception texts and alerts. A message
with an escape sequence could recolour or clear a terminal, rewrite the line before it (a
carriage return) or split one log record into two (a newline); a message of megabytes would
bury everything around it. `readable` is applied once, where such text enters the project.
"""

from __future__ import annotations

import re

MESSAGE_LIMIT = 300  # characters of outside text shown at most, the ellipsis included
ELLIPSIS = "..."

# C0 controls (newline, carriage return, tab and ESC among them), DEL and C1 controls,
# the Unicode line and paragraph separators, and the bidirectional embeddings, overrides
# and isolates that make text read differently from what it is.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# Whole escape sequences, so that their parameters go with them: CSI (`ESC [ ... m`), OSC
# (`ESC ] ... BEL` or `ESC ] ... ESC \`), and two-character escapes.
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])")


# user:password@ in a URL, for text that may not parse as a URL at all.
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def without_password(url: str) -> str:
    """`url` with the password of its `user:password@` part shown as ***, parseable or not."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def readable(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line: every escape sequence and control character becomes a space,
    runs of white space become one, and what is longer than `limit` is cut to end in `...`
    (`limit` characters in all)."""
    spaced = CONTROL_CHARACTER.sub(" ", _ESCAPE_SEQUENCE.sub(" ", str(text)))
    flat = " ".join(spaced.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
