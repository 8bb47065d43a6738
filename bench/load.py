"""A bounded load on one loopback server: Debian's `wrk`, with the cookies of a logged-in client.

wrk keeps `connections` requests in flight for `seconds`, from one thread,
and stops by itself. A Lua script counts every answer that is not 200 or
does not show the expected text (a page that sent the client to log in
would otherwise count as served), and the bench fails on any.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CONNECTIONS = 4  # requests in flight: two per gunicorn worker

SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; expect = args[1] end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("bad answers: %d\\n", total))
end
"""


def wrk():
    """The path of wrk; stop with how to install it if there is none."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian, Ubuntu), or leave out --fst")
    return path


def rate(port, path, cookies, seconds, expect, connections=CONNECTIONS):
    """Requests per second over `seconds` of GET `path` with `cookies`, every answer checked."""
    header = "Cookie: " + "; ".join(f"{name}={value}" for name, value in cookies.items())
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "check.lua"
        script.write_text(SCRIPT)
        command = [wrk(), "--threads", "1", "--connections", str(connections), "--duration", f"{seconds}s"]
        command += ["--header", header, "--script", str(script), f"http://127.0.0.1:{port}{path}", "--", expect]
        out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    bad = int(re.search(r"bad answers: (\d+)", out).group(1))
    if bad:
        raise RuntimeError(f"GET {path} on port {port}: {bad} answers were not the logged-in page\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
