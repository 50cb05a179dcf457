"""Strings that are not valid Unicode: a lone UTF-16 surrogate, as a JSON ``\\ud800`` escape
spells it, is a Python ``str`` that no tokenizer, database or JSON writer takes."""

from __future__ import annotations

from sbert.errors import InputFormatError


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone UTF-16 surrogate, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def surrogate_error(where: str, text: str, at: int) -> InputFormatError:
    """The error for a text with a lone surrogate at ``at``, ``where`` naming the text."""
    return InputFormatError(f"{where} holds a lone UTF-16 surrogate (\\u{ord(text[at]):04x} "
                            f"at character {at}), which is not valid Unicode; fix the JSON "
                            "escape that made it, or drop the text")
