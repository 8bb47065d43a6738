"""Figure 1: the test matrix in one process, and the Flask tutorial's own suite beside it."""

import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

from common import ROOT

TARGET_CASE_MS = 10.0  # each case of the test matrix, wall time over cases that ran


def test_matrix(tmp):
    """The whole shared suite over every step."""
    return pytest_suite(ROOT, Path(tmp) / "junit-steps.xml")


def pytest_suite(folder, junit):
    """Run the pytest suite in `folder` in a new process; cases that ran, wall time and pytest's own time."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    suites = ET.parse(junit).getroot()
    suites = [suites] if suites.tag == "testsuite" else list(suites)
    total = sum(int(s.get("tests")) for s in suites)
    skipped = sum(int(s.get("skipped")) for s in suites)
    ran = total - skipped
    # pytest's own clock (collection and cases, without interpreter start) as a second figure.
    inside = sum(float(s.get("time")) for s in suites)
    return {
        "cases": ran,
        "skipped": skipped,
        "wall_s": round(wall, 2),
        "pytest_s": round(inside, 2),
        "case_ms": round(wall * 1000 / ran, 2),
        "pytest_case_ms": round(inside * 1000 / ran, 2),
    }


def flask_tutorial_suite(tmp):
    """The baseline: the tests of Flask's own tutorial app (flaskr), run here and now.

    They ship in the Flask source distribution, so they come from the
    package index like everything else, in the version installed here. None
    of their code is kept: it is unpacked into the temporary folder and run.
    """
    version = metadata.version("flask")
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*download, f"flask=={version}", "--dest", tmp], check=True)
    [sdist] = Path(tmp).glob(f"flask-{version}.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp, filter="data")
    tutorial = Path(tmp) / f"flask-{version}" / "examples" / "tutorial"
    # `python -m pytest` puts the folder on sys.path, so `import flaskr` finds it uninstalled.
    return {"flask": version, **pytest_suite(tutorial, Path(tmp) / "junit-flaskr.xml")}
