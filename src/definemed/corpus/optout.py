"""Rights reservations: drop documents whose URL is on a blocklist or TDM opt-out list.

A list file is plain UTF-8 text, one entry per line, `#` starts a comment:

    example.de                 the domain and every subdomain (www.example.de, forum.example.de)
    =shop.example.de           exactly this host, not its subdomains
    example.de/forum/          a URL path prefix on that domain (and its subdomains)
    https://www.example.de/x   a scheme is ignored; "www." is not stripped (it is a subdomain)

Matching is by host labels, never by substring: `example.de` does not match `notexample.de` or
`example.de.evil.com`. Hosts are lowercased, a trailing dot and a port are ignored. Path
prefixes are compared on whole segments as written: `example.de/forum/` matches
`/forum/thread-1` but not `/forum-archiv/`; `example.de/forum` matches both.

Drop reasons (counted in datatrove's stats as `dropped_<reason>`): `optout_domain` for a domain
or exact-host entry, `optout_path` for a path-prefix entry.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from pydantic import Field

from definemed.config import StrictModel
from definemed.errors import UserError


class OptOutConfig(StrictModel):
    enabled: bool = True
    lists: list[Path] = Field(default_factory=list)  # text files: domain, =host or domain/path per line


def _host_and_path(url: str) -> tuple[str, str]:
    if "://" not in url:
        url = "http://" + url  # list entries and some crawl URLs come without a scheme
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    return host, parts.path or "/"


class OptOutList:
    """Parsed entries of one or more list files, ready for lookups in O(labels of the host)."""

    def __init__(self, domains=(), hosts=(), paths: dict[str, list[str]] | None = None):
        self.domains, self.hosts = set(domains), set(hosts)
        self.paths: dict[str, list[str]] = paths or {}

    @classmethod
    def parse(cls, lines, source: str = "list") -> "OptOutList":
        out = cls()
        for no, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            exact = line.startswith("=")
            host, path = _host_and_path(line.lstrip("="))
            if not host or "." not in host or " " in line:
                raise UserError(f"{source}:{no}: '{raw.strip()}' is not a domain, host or domain/path")
            if path not in ("", "/"):
                out.paths.setdefault(host, []).append(path)
            elif exact:
                out.hosts.add(host)
            else:
                out.domains.add(host)
        return out

    @classmethod
    def load(cls, files: list[Path]) -> "OptOutList":
        merged = cls()
        for f in files:
            f = Path(f)
            if not f.is_file():
                raise UserError(f"opt-out list not found: {f}")
            part = cls.parse(f.read_text(encoding="utf-8").splitlines(), str(f))
            merged.domains |= part.domains
            merged.hosts |= part.hosts
            for host, prefixes in part.paths.items():
                merged.paths.setdefault(host, []).extend(prefixes)
        return merged

    def __len__(self) -> int:
        return len(self.domains) + len(self.hosts) + sum(map(len, self.paths.values()))

    def match(self, url: str | None) -> str | None:
        """The drop reason for this URL (`optout_domain`, `optout_path`), or None."""
        if not url:
            return None
        host, path = _host_and_path(url)
        if host in self.hosts:
            return "optout_domain"
        labels = host.split(".")
        suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)]  # host, parent, …, "example.de"
        if any(s in self.domains for s in suffixes):
            return "optout_domain"
        for s in suffixes:
            if any(path.startswith(prefix) for prefix in self.paths.get(s, ())):
                return "optout_path"
        return None


class OptOutFilter(BaseFilter):
    """Drops documents whose `url` metadata matches an opt-out list entry."""

    name = "🚫 opt-out"

    def __init__(self, lists: list[Path] | OptOutList, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.optout = lists if isinstance(lists, OptOutList) else OptOutList.load(list(lists))

    def filter(self, doc: Document):
        reason = self.optout.match(doc.metadata.get("url"))
        return True if reason is None else (False, reason)
