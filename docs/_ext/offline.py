"""After an HTML build, check that the docs load nothing from another host.

Every page and stylesheet is checked for resources loaded from another
host (scripts, fonts, styles, images): there must be none, so the docs
work offline and tell no third party who reads them.
"""

import re
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)


# A resource the browser fetches by itself, from another host (or "//host").
REMOTE_IN_HTML = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preload|modulepreload|icon|prefetch|preconnect))"
    r"[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//",
    re.IGNORECASE,
)
REMOTE_IN_CSS = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?:https?:)?//", re.IGNORECASE)


def check_offline(app, exception):
    """Warn about every page or stylesheet that would load something from the network."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for path in sorted(outdir.rglob("*")):
        if path.suffix == ".html":
            pattern = REMOTE_IN_HTML
        elif path.suffix == ".css":
            pattern = REMOTE_IN_CSS
        else:
            continue
        for match in pattern.finditer(path.read_text(encoding="utf-8", errors="replace")):
            logger.warning("%s loads a remote resource: %s", path.relative_to(outdir), match.group(0)[:120])


def setup(app):
    app.connect("build-finished", check_offline)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
