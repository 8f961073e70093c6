"""`[source]` and `[mapping]`: the HR input and how it is mapped."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from connector.config.values import (
    ConfigPath,
    Section,
)

SourceKind = Literal["auto", "csv", "jsonl"]
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


class SourceSettings(Section):
    """`[source]`: the HR input file and the optional grants file."""

    kind: SourceKind = "auto"
    path: ConfigPath
    grants: ConfigPath | None = None

    def kind_of(self, path: Path) -> Literal["csv", "jsonl"]:
        """The format of an input file: `kind`, or by suffix when "auto" (.jsonl: JSON Lines)."""
        if self.kind != "auto":
            return self.kind
        return "jsonl" if path.suffix.lower() in _JSONL_SUFFIXES else "csv"


class MappingSettings(Section):
    """`[mapping]`: the mapping file (None: the built-in `mappings/acmidm.toml`)."""

    file: ConfigPath | None = None
