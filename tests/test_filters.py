"""Filter expressions as users type them, read into the filter dict the stores take; and the
CLI's --filter on a real index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colretrieve.errors import ColretrieveError
from colretrieve.filters import parse_filters
from tests.helpers import CENSUS, cli


@pytest.mark.parametrize(("expressions", "expected"), [
    (["file=a.pdf"], {"file": "a.pdf"}),
    (["page = 3"], {"page": 3}),
    (["page!=3"], {"page": {"not": 3}}),
    (["page>=2", "page<5"], {"page": {"gte": 2, "lt": 5}}),
    (["year>2019.5"], {"year": {"gt": 2019.5}}),
    (["file in (a.pdf, b.pdf)"], {"file": ["a.pdf", "b.pdf"]}),
    (["lang not in (de,it)"], {"lang": {"not": ["de", "it"]}}),
    (["draft"], {"draft": {"exists": True}}),
    (["not draft"], {"draft": {"exists": False}}),
    (["code='2020'"], {"code": "2020"}),
    (["draft=true", "final!=false"], {"draft": True, "final": {"not": False}}),
    (["flag='true'"], {"flag": "true"}),
    (["name=a=b"], {"name": "a=b"}),
    (["page>=2", "page!=3"], {"page": {"gte": 2, "not": 3}}),
])
def test_expressions(expressions: list[str], expected: dict) -> None:
    assert parse_filters(expressions) == expected


@pytest.mark.parametrize(("expressions", "message"), [
    (["page>>2"], "> compares numbers, not .>2."),
    (["page ~ 2"], "expected FIELD=VALUE"),
    (["year>=recent"], ">= compares numbers"),
    (["year<true"], "< compares numbers"),
    (["file in ()"], "no values"),
    (["file=a.pdf", "file=b.pdf"], "already matched to a value"),
    (["page>=2", "page>=3"], "already has gte"),
    (["=3"], "expected FIELD=VALUE"),
])
def test_mistakes_name_the_expression(expressions: list[str], message: str) -> None:
    with pytest.raises(ColretrieveError, match=message) as caught:
        parse_filters(expressions)
    assert repr(expressions[-1]) in str(caught.value)


def test_the_cli_filters_hits(built_index: Path) -> None:
    run = cli("query", "table of results", "--index", str(built_index), "-k", "10", "--json",
              "--filter", f"file not in ({CENSUS}, hsaur3__pca.pdf)", "--filter", "page<=2")
    assert run.returncode == 0, run.stderr
    hits = [json.loads(line) for line in run.stdout.splitlines()]
    assert hits and all(Path(h["path"]).name not in (CENSUS, "hsaur3__pca.pdf") and h["page"] <= 2 for h in hits)
