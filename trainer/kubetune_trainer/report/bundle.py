"""The JavaScript that draws the report's charts: Vega, Vega-Lite and Vega-Embed in one script,
from vl-convert's own copies (versions that work together), embedded in every report so it
opens offline.

Making the bundle takes vl-convert a few seconds, so it is kept per vl-convert version in
`~/.cache/kubetune/vega/` (`$KUBETUNE_CACHE/vega/`), or nowhere when that is not writable
(a read-only pod filesystem): the report is then slower, never missing.
"""

from __future__ import annotations

import functools
import os
from importlib import metadata
from pathlib import Path

MISSING = (
    "the HTML report needs vl-convert-python (Vega-Lite): install the trainer or report extra "
    "(pip install 'kubetune[report]', or uv sync --extra report)"
)


class ReportUnavailable(RuntimeError):
    """The charting library is not installed."""


def cache_dir() -> Path:
    root = os.environ.get("KUBETUNE_CACHE") or Path.home() / ".cache" / "kubetune"
    return Path(root) / "vega"


@functools.cache
def vega_bundle() -> str:
    """One script defining `vega`, `vegaLite` and `vegaEmbed` on `window`."""
    try:
        version = metadata.version("vl-convert-python")
        import vl_convert
    except (ImportError, metadata.PackageNotFoundError) as missing:
        raise ReportUnavailable(MISSING) from missing
    cached = cache_dir() / f"vl-convert-{version}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    # The stub declares `snippet` required; the function takes None (the libraries alone), and
    # mypy reads the stub or not depending on how the environment was made: called untyped.
    make_bundle = getattr(vl_convert, "javascript_bundle")  # noqa: B009
    bundle: str = make_bundle(vl_version=vl_convert.get_vegalite_versions()[-1])
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(bundle, encoding="utf-8")
        os.replace(tmp, cached)
    except OSError:
        pass
    return bundle


def versions() -> dict[str, str]:
    """The versions in the bundle, for the report's footer."""
    import vl_convert

    return {
        "vega": vl_convert.get_vega_version(),
        "vega-lite": vl_convert.get_vegalite_versions()[-1],
        "vega-embed": vl_convert.get_vega_embed_version(),
    }
