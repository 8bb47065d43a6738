"""Read what a page shows, the way a browser (or a learner) would."""

import base64
import json
import re
import zlib
from html.parser import HTMLParser


class _Page(HTMLParser):
    """Collects the forms, their inputs, the links and the visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.links = []
        # Elements that carry data-* attributes (a script's settings): their attributes.
        self.data = []
        self.text = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if any(name.startswith("data-") for name in attrs):
            self.data.append(attrs | {"tag": tag})
        if tag == "form":
            self.forms.append(
                {"method": attrs.get("method", "get").lower(), "action": attrs.get("action", ""), "inputs": {}}
            )
        elif tag in ("input", "button", "textarea", "select") and "name" in attrs and self.forms:
            self.forms[-1]["inputs"][attrs["name"]] = attrs | {"tag": tag}
        elif tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        elif tag in ("script", "style", "title"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def parse(html):
    page = _Page()
    page.feed(html)
    page.close()
    return page


def text(html):
    """The page's visible text, with runs of white space folded to one space."""
    return " ".join(" ".join(parse(html).text).split())


def table_rows(html):
    """The rows of the page's tables, but for heading rows: (each cell's text, the action of each form in the row)."""
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [text(cell) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        if cells:
            found.append((cells, [form["action"] for form in forms(row)]))
    return found


def words(html):
    """The visible text split into words (punctuation around them dropped)."""
    return re.findall(r"[\w.@-]+", text(html))


def at_field(html, name, next_name):
    """The visible text from the input `name` up to the input `next_name`: that field's messages."""
    return text(html[html.index(f'name="{name}"') : html.index(f'name="{next_name}"')])


def message_at(html, blank, name, next_name):
    """The words at the field `name` (up to `next_name`) that the empty form `blank` lacks, in lower case."""
    before = set(at_field(blank, name, next_name).lower().split())
    return " ".join(word for word in at_field(html, name, next_name).lower().split() if word not in before)


def links(html):
    return parse(html).links


def forms(html):
    """Every form: {"method", "action", "inputs": {name: attributes}}."""
    return parse(html).forms


def data_elements(html, attribute):
    """The attributes of every element with the data-* `attribute`, in page order."""
    return [element for element in parse(html).data if attribute in element]


def inputs(html):
    """The named inputs of every form on the page, merged: {name: attributes}."""
    merged = {}
    for form in forms(html):
        merged.update(form["inputs"])
    return merged


# Ways a page can stop a password manager or a paste (ASVS 6.2.7).
BLOCKS_PASTE = ("onpaste", "oncopy", "oncut", "ondrop")


def password_field_problems(html, autocomplete):
    """What keeps password managers from helping on this page: [] when nothing does.

    `autocomplete` maps each password input's name to the autocomplete
    value it must have: "current-password" or "new-password". No maxlength
    under 64 characters (which would cut a generated passphrase short), and
    nothing that blocks pasting.
    """
    fields = {name: field for name, field in inputs(html).items() if field.get("type") == "password"}
    problems = (
        [f"password inputs {sorted(fields)}, not {sorted(autocomplete)}"]
        if fields.keys() != autocomplete.keys()
        else []
    )
    for name, field in fields.items():
        if field.get("autocomplete") != autocomplete.get(name):
            problems.append(f"{name}: autocomplete={field.get('autocomplete')!r}, not {autocomplete.get(name)!r}")
        maxlength = field.get("maxlength", "").strip()
        if maxlength and not (maxlength.isdigit() and int(maxlength) >= 64):
            problems.append(f"{name}: maxlength={maxlength!r}")
    problems += [f"{handler} on the page" for handler in BLOCKS_PASTE if handler in html.lower()]
    return problems


def csrf_token(html):
    """The value of the first `csrf_token` input on the page, or None."""
    field = inputs(html).get("csrf_token")
    return field["value"] if field else None


def decode_session(cookie):
    """What a Flask session cookie holds: it is signed, not encrypted.

    The part before the first dot is URL-safe base64 of JSON; a leading dot
    means the JSON was zlib-compressed first.
    """
    compressed = cookie.startswith(".")
    payload = cookie.lstrip(".").split(".", 1)[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if compressed:
        data = zlib.decompress(data)
    return json.loads(data)


def inline_code(html):
    """The inline script and style on a page, which a strict Content-Security-Policy blocks: [] if none."""
    html = html.lower()
    found = ["<style>"] if "<style" in html else []
    found += ["a style attribute"] if " style=" in html else []
    found += ["<script> with no src" for script in html.split("<script")[1:] if " src=" not in script.split(">", 1)[0]]
    return found + [f"on{event}=" for event in ("click", "load", "submit", "error") if f" on{event}=" in html]
