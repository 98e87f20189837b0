"""Many teams in one index (`tenant=` / `--tenant`): each sees, finds and deletes its own pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from colretrieve import ColretrieveError, Index
from colretrieve.errors import IndexConfigError
from tests.helpers import cli


def test_teams_share_an_index_and_see_their_own_pages(tmp_path: Path, samples: Path, text_encoder) -> None:
    census, pca = samples / "tabula__census_table_12s0324.pdf", samples / "hsaur3__pca.pdf"
    directory = tmp_path / "shared-index"
    with Index.create(directory, model=text_encoder, tenant="stats-team") as team:
        assert team.ingest([census, pca]).documents == 2
    with Index.open(directory, model=text_encoder, tenant="law-team") as other:
        assert other.ingest([census]).documents == 1  # the same file: a copy of its own, not "unchanged"
        hits = other.search("principal components of the heptathlon", k=5)
        assert {Path(h.path).name for h in hits} == {census.name}
        assert other.stats()["documents"] == 1
        other.delete(census.name)
        assert other.stats()["pages"] == 0
    with Index.open(directory, model=text_encoder, tenant="stats-team") as team:
        assert team.stats()["documents"] == 2  # the other team's delete took its own copy only
        top = team.search("How many people were arrested in 2009, by sex and age?", k=1)
        assert Path(top[0].path).name == census.name
        (drawn,) = team.similarity_maps("arrests by sex and age", top, tmp_path / "maps")  # the team's own copy
        assert drawn.is_file()
    with Index.open(directory, model=text_encoder) as everyone:  # no tenant: every team's pages, read only
        assert everyone.stats()["documents"] == 2
        with pytest.raises(ColretrieveError, match="name the team"):
            everyone.delete(census.name)  # would take every team's copy
        with pytest.raises(ColretrieveError, match="name the team"):
            everyone.ingest([pca])


def test_a_one_team_index_takes_no_tenant(built_index: Path, text_encoder) -> None:
    with pytest.raises(IndexConfigError, match="made for one team"):
        Index.open(built_index, model=text_encoder, tenant="team-a")


def test_a_bad_tenant_name_is_a_usage_error(tmp_path: Path) -> None:
    run = cli("query", "anything", "--index", str(tmp_path / "none"), "--tenant", "../etc")
    assert run.returncode == 2 and "Invalid value for '--tenant': tenant '../etc'" in run.stderr
