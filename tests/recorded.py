"""Real Brightpearl exchanges, recorded against live accounts (copied from the shared API notes), replayed.

Each file holds one exchange: the request line, request headers, status, response headers and body. Tests
serve these bytes verbatim from a real aiohttp server so that the client is tested against exactly what
Brightpearl sends.
"""

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # after /public-api/{account}/
    query: str
    status: int
    headers: dict[str, str]
    body: bytes


def load(name: str) -> Exchange:
    text = (RECORDED / name).read_text()
    lines = text.split("\n")
    method, url = lines[0].split(" ", 1)
    status = ast.literal_eval(lines[3].removeprefix("STATUS "))["code"]
    headers = {k: v[0] for k, v in json.loads(lines[4].removeprefix("RESP HEADERS: ")).items()}
    body = "\n".join(lines[5:]).strip().encode()
    parts = urlsplit(url)
    path = parts.path.split("/", 3)[3]  # drop /public-api/{account}/
    for drop in ("Content-Length", "Transfer-Encoding", "Connection", "Date"):
        headers.pop(drop, None)
    return Exchange(method, path, parts.query, status, headers, body)
