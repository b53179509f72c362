"""`kubetune logs` prefixes every line a terminal shows: a progress bar's redraws (carriage
returns, as tqdm writes them) each get the rank's prefix instead of writing over it."""

from __future__ import annotations

import pytest

from kubetune.observe.logs import split_lines


@pytest.mark.parametrize(
    ("text", "lines", "rest"),
    [
        ("a\nb\n", ["a", "b"], ""),
        ("a\nstill writ", ["a"], "still writ"),
        (
            "steps 10%\rsteps 20%\rsteps 30%\ndone\n",
            ["steps 10%", "steps 20%", "steps 30%", "done"],
            "",
        ),
        ("windows\r\nline\r\n", ["windows", "line"], ""),
        ("a CR that may start a CR LF\r", [], "a CR that may start a CR LF\r"),
    ],
)
def test_every_line_a_terminal_shows_is_split_out(text: str, lines: list[str], rest: str) -> None:
    assert split_lines(text) == (lines, rest)


def test_a_chunk_boundary_inside_cr_lf_makes_no_empty_line() -> None:
    first, rest = split_lines("one\r")
    second, end = split_lines(rest + "\ntwo\n")
    assert first + second == ["one", "two"] and end == ""
