"""Does a chat template compile? The same Jinja dialect as transformers' `apply_chat_template`
(sandboxed, `trim_blocks`/`lstrip_blocks`, loop controls, `{% generation %}` blocks), checked
without rendering anything. Needs only jinja2, so `kubetune validate` can use it too."""

from __future__ import annotations

from typing import Any


def template_error(source: str) -> str | None:
    """None when the template compiles; otherwise what is wrong, with its line."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}…{% endgeneration %}`: transformers marks assistant text with it."""

        tags = {"generation"}  # noqa: RUF012 (jinja2's own class attribute)

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    try:
        env.from_string(source)
    except jinja2.TemplateSyntaxError as err:
        return f"line {err.lineno}: {err.message}"
    return None
