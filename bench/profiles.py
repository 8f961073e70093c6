"""Profiles of measured runs: py-spy samples them from outside, and this sums the samples up.

`bench` runs a measured run under `py-spy record --format raw --idle --nonblocking` (100 samples
a second, read from outside the process without stopping it, so the run is not slowed in
any way that matters). A raw file has one line per distinct stack, `frame;frame;... count`,
each frame `function (file:line)`. `summarize` gives the share of samples:

- by package, of the innermost frame (self time; a C function counts for its caller's package,
  waiting in `select`/`epoll` counts as "idle (waiting for the network)");
- by function, self time;
- of the connector's own functions, inclusive (with everything they call).

`python -m bench.profiles FILE` prints the summary of a raw file.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("connector", ("connector/",)),
    ("bench (event hooks)", ("bench/",)),
    ("scim2_client", ("scim2_client/",)),
    ("scim2_models", ("scim2_models/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("http client (httpx2, httpcore2, h11, anyio)", ("httpx2/", "httpcore2/", "h11/", "anyio/")),
    ("asyncio (event loop, sockets)", ("asyncio/",)),
    ("tenacity", ("tenacity/",)),
    ("structlog", ("structlog/",)),
    ("lark (SCIM filter parsing)", ("lark/",)),
    ("stdnum", ("stdnum/",)),
    ("sqlite3", ("sqlite3/",)),
    ("json", ("json/",)),
    ("csv", ("csv.py",)),
    ("hmac/hashlib", ("hmac.py", "hashlib.py")),
    ("importing modules", ("<frozen importlib",)),
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["function"], match["file"]


def package_of(path: str) -> str:
    """The package a source file belongs to, as the summary groups them."""
    for name, markers in PACKAGES:
        if any(path.startswith(marker) or f"/{marker}" in path for marker in markers):
            return name
    return "stdlib/other"


def short(path: str) -> str:
    """A file path without the interpreter's or the checkout's prefix (py-spy mostly gives
    paths relative to `sys.path` already)."""
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[-1] if marker == "/lib/python3" else tail
    return path


def _is_idle(function: str, path: str) -> bool:
    """Waiting in the event loop's selector: nothing to do until the network answers."""
    return path.endswith("selectors.py") and function.endswith(("select", "poll"))


def _is_connector(path: str) -> bool:
    return path.startswith("connector/") or "/connector/" in path


def summarize(raw: Path, top: int = 20) -> dict[str, Any]:
    """Shares of the samples by package, by function (self) and by connector function."""
    samples = 0
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(frame) for frame in stack.split(";")]
        samples += count
        function, path = frames[-1]
        if _is_idle(function, path):
            by_package["idle (waiting for the network)"] += count
        else:
            by_package[package_of(path)] += count
        self_time[f"{function}  {short(path)}"] += count
        seen: set[str] = set()
        for function, path in frames:
            if _is_connector(path):
                key = f"{function}  {short(path)}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
    total = samples or 1
    return {
        "samples": samples,
        "by_package": {k: round(v / total, 4) for k, v in by_package.most_common()},
        "self": {k: round(v / total, 4) for k, v in self_time.most_common(top)},
        "connector_inclusive": {k: round(v / total, 4) for k, v in inclusive.most_common(top)},
    }


def render(summary: dict[str, Any]) -> str:
    """A summary as text: shares of the run's samples (100 a second, waiting included)."""
    lines = [f"{summary['samples']} samples"]
    for title, key in (
        ("self time by package", "by_package"),
        ("self time by function", "self"),
        ("inclusive time, connector functions", "connector_inclusive"),
    ):
        lines.append(f"\n{title}:")
        lines += [f"  {share:6.1%}  {name}" for name, share in summary[key].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(summarize(Path(sys.argv[1]))))
