"""Find a Chromium to drive, and the flags it runs with here.

The browser tests never download a browser: they use the system's Chromium
(Debian's `chromium` package), or one that `playwright install chromium`
already put in place on a machine with internet.
"""

import os
import shutil
from pathlib import Path

# Tried in this order; CHROMIUM=/path/to/chrome picks any other.
CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")

HOW_TO_INSTALL = (
    "No Chromium found for the browser tests: install one with `apt-get install chromium` (Debian, Ubuntu) "
    "or `playwright install chromium` (needs internet), or set CHROMIUM=/path/to/chromium."
)

# The network is closed on CI: no update checks, sync or first-run pages.
ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def system_chromium():
    """The path of the system's Chromium, or None."""
    wanted = os.environ.get("CHROMIUM")
    for name in [wanted] if wanted else CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_args(bundled_path=None):
    """Keyword arguments for Playwright's `chromium.launch()`, or None if there is no Chromium.

    `bundled_path` is where `playwright install chromium` would have put its
    own build; it is used only when the system has none.
    """
    args = list(ARGS)
    # Chromium's sandbox refuses to start as root (as in a CI container).
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    found = system_chromium()
    if found:
        return {"executable_path": found, "headless": True, "args": args}
    if bundled_path and Path(bundled_path).exists():
        return {"headless": True, "args": args}
    return None
