"""Step 14's page, run while the docs are built: alice's blind spot, and the course's checklist.

- `blind-spot STEP`: mallory logs in as alice with her leaked password,
  from an address and a browser of her own; then alice, at home, looks
  for a sign of it and tries to stop it. Without the activity and
  sessions pages (step 13) she sees nothing, and "log out everywhere"
  ends her own session too. With them (step 14) her activity names
  mallory's sign-in, and ending that one session from the list logs
  mallory out and leaves alice in. The build warns unless mallory is
  unseen and only stoppable with everyone on a step without the pages,
  and seen and stopped alone on a step with them.
- `checklist`: the finished app's checklist, one line per thing it does:
  `text | step | test`, each naming the step that teaches it and the
  shared test that proves it. The build warns when the test does not
  exist, when the step is not the first the test runs on, or when the
  test does not run on the last step.
"""

import contextlib
import io
import re
import tempfile

from attacks import Attack
from attacks import Browser
from attacks import Served
from contract import marked_tests
from docutils import nodes
from repofiles import ROOT
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import steps as stepkit
from harness.pages import table_rows
from harness.pages import text

logger = logging.getLogger(__name__)

MALLORY = ("203.0.113.66", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/133.0")
ALICE = ("198.51.100.7", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")


def browser(served, where):
    address, agent = where
    visitor = Browser(served, address)
    visitor.headers["User-Agent"] = agent
    return visitor


def blind_spot(step_dir):
    """The transcript, and what it came to: "seen and stopped alone", "unseen, stopped with everyone" or "other"."""
    lines = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Served(step_dir, folder, {"PROXY_COUNT": 1}) as served,
        contextlib.redirect_stdout(io.StringIO()),  # no mail server: the step prints its notices
    ):
        has_pages = "device-sessions" in served.step.features
        mallory = browser(served, MALLORY)
        login = mallory.post("/login", {"username": "alice", "password": "wonderland"})
        lines.append(f"# mallory ({MALLORY[0]}, Firefox on Windows) logs in with alice's leaked password:")
        lines.append(f"POST /login username=alice: {mallory.said(login)}")
        alice = browser(served, ALICE)
        alice.post("/login", {"username": "alice", "password": "wonderland"})
        lines.append(f"# alice logs in at home ({ALICE[0]}, Firefox on Linux), and looks for a sign of it:")
        seen = False
        if has_pages:
            page = alice.get("/account/activity")
            events = [text(item) for item in re.findall(r"<li>(.*?)</li>", page.text, re.S)]
            lines.append("GET /account/activity:")
            lines += [f"  {event}" for event in events]
            seen = any(MALLORY[0] in event for event in events)
            page = alice.get("/account/sessions")
            rows = table_rows(page.text)
            lines.append("GET /account/sessions:")
            for cells, _ in rows:  # its browser, address, login and last seen: the cells before the button
                lines.append(f"  {cells[0]} · {cells[1]} · logged in {cells[2]} · last seen {cells[3]}")
            end = next(action for cells, [action] in rows if cells[1] == MALLORY[0])
            response = alice.post(end)
            lines.append(f"# She ends the session from {MALLORY[0]}:")
            lines.append(f"POST {end[:24]}…/end: {alice.said(response)}")
        else:
            page = alice.get("/profile")
            lines.append(f"GET /profile: {alice.whose_profile()}; it says nothing of other sessions")
            response = alice.post("/logout-everywhere")
            lines.append("# Her one remedy, in case: log out everywhere.")
            lines.append(f"POST /logout-everywhere: {alice.said(response)}")
        mallory_after, alice_after = mallory.whose_profile(), alice.whose_profile()
        lines.append(f"GET /profile, mallory: {mallory_after}")
        lines.append(f"GET /profile, alice: {alice_after}")
    mallory_out = "the profile of" not in mallory_after
    alice_in = "the profile of alice" in alice_after
    if has_pages and seen and mallory_out and alice_in:
        return lines, "seen and stopped alone"
    if not has_pages and mallory_out and not alice_in:
        return lines, "unseen, stopped with everyone"
    return lines, "other"


class BlindSpot(Attack):
    """`blind-spot STEP`: the build warns unless the outcome is what the page says of the step."""

    sources = ("docs/_ext/activitylog.py",)

    def run(self):
        lines, outcome = blind_spot(self.arguments[0])
        [step] = stepkit.select(stepkit.discover(), [self.arguments[0]])
        if "device-sessions" in step.features:
            self.came_to(outcome, "seen and stopped alone", "alice sees mallory's sign-in and ends it alone")
        else:
            self.came_to(outcome, "unseen, stopped with everyone", "alice sees nothing, and ends her own session too")
        return self.show(lines)


class Checklist(SphinxDirective):
    """`checklist`: lines of `what it does | step | test`, checked, shown as a table with links."""

    has_content = True

    def run(self):
        steps = {step.number: step for step in stepkit.discover()}
        last = list(steps.values())[-1]
        tests = marked_tests()
        table = nodes.table(classes=["checklist"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (60, 15, 25):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self.row([nodes.Text("The finished app"), nodes.Text("Taught in"), nodes.Text("Proved by")])
        group += head
        body = nodes.tbody()
        group += body
        for line in self.content:
            if not line.strip():
                continue
            what, number, test = (part.strip() for part in line.split("|"))
            step = steps.get(number)
            first = next((n for n, s in steps.items() if test in tests and tests[test].runs_on(s)), None)
            if step is None or test not in tests or not tests[test].runs_on(last) or first != number:
                logger.warning(
                    "checklist line %r: step %s must be the first that %s runs on (it is %s), and it must run on %s",
                    what,
                    number,
                    test,
                    first,
                    last.number,
                    location=self.get_location(),
                )
                continue
            inline, _ = self.parse_inline(what, lineno=self.lineno)
            link, _ = self.parse_inline(f"{{doc}}`step {number} </steps/{step.name}>`", lineno=self.lineno)
            proof = nodes.inline("", "", nodes.literal(text=test), nodes.Text(f" ({tests[test][0].name})"))
            body += self.row([nodes.inline("", "", *inline), nodes.inline("", "", *link), proof])
        for path in (ROOT / "shared_tests").glob("*.py"):
            self.env.note_dependency(str(path))
        return [table]

    @staticmethod
    def row(cells):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", cell)
            row += entry
        return row


def setup(app):
    app.add_directive("blind-spot", BlindSpot)
    app.add_directive("checklist", Checklist)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
