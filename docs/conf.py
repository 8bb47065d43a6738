"""Sphinx configuration for the flask-login-steps walkthrough.

Build it with `nox -s docs` (strict: any warning fails), or serve it with live
reload with `nox -s docs-serve`.
"""

import sys
from pathlib import Path

# The local extensions in _ext/: repository paths in diffs and the README's
# commands (repofiles); the steps' table, install lines and screenshots
# (stepinfo); a real session cookie (cookies); the contract's lines and the
# tests they name (contract); the checker's report on a broken app
# (checkreport); the offline check (offline); attacks on served steps
# (attacks); console blocks run at build time (consoles); the OWASP ASVS rows
# of docs/asvs.md and the tests that prove them (asvs). consoles comes after
# repofiles and stepinfo: it overrides their install-line directives.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "Flask login steps"
author = "the flask-login-steps authors"
copyright = "2026, " + author

extensions = [
    "myst_parser",
    "repofiles",
    "stepinfo",
    "cookies",
    "contract",
    "checkreport",
    "offline",
    "attacks",
    "oidc",
    "adminarea",
    "activitylog",
    "consoles",
    "asvs",
]
# The benchmark tables are included by benchmarks.md, not pages of their own.
exclude_patterns = ["_build", "benchmarks/*.md"]
# A cross-reference that leads nowhere is an error, not a broken link.
nitpicky = True

# "(label)=" targets and ```{directive} blocks are MyST; these add little
# extras the pages use: ::: fences for notes, and "term\n: definition" lists.
myst_enable_extensions = ["colon_fence", "deflist"]
# Headings get anchors, so a page can link to "#what-it-still-gets-wrong".
myst_heading_anchors = 3

html_theme = "furo"
html_title = "Flask login steps"
# Local stylesheets only (nothing from another host): diffs get whole-line
# green and red bands, like a code-review page, in light and dark themes;
# the contract's lines get a rule and quieter type for their tests; the note
# under a console block is small.
# Listed as files, so the screenshots in _static/ are not copied twice.
html_static_path = ["_static/diff.css", "_static/contract.css", "_static/consoles.css"]
html_css_files = ["diff.css", "contract.css", "consoles.css"]
# No "view page source" links to a copy of every page's Markdown.
html_copy_source = False
html_show_sourcelink = False
