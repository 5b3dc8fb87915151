"""import_votes: long and count layouts, aliases, unknowns reported, idempotent, clear CLI errors."""
import pytest
from django.core.management import CommandError, call_command

from study.errors import InvalidInput
from study.models import ImportedVote, VoteSource
from study.services.vote_imports import votes_import
from tests.factories import StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db

FERPLUS = b"""Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0
Training,fer0000001.png,6,0,1,1,0,0,0,0,2,0
PublicTest,fer9999999.png,10,0,0,0,0,0,0,0,0,0
"""

LONG = b"""image_filename,annotator_id,chosen_label,reaction_time
dir/fer0000000.png,a1,happy,812
fer0000000.png,a2,Happiness,1500.4
fer0000001.png,a1,SAD,
fer0000001.png,a3,bored,700
missing.png,a1,angry,900
fer0000001.png,a4,fear,-5
"""


@pytest.fixture
def study():
    study = StudyFactory()
    for name in ("fer0000000.png", "fer0000001.png"):
        StimulusFactory(study=study, original_name=name)
    return study


def counts_of(source):
    out = {}
    for vote in ImportedVote.objects.filter(source=source).select_related("stimulus"):
        out[(vote.stimulus.original_name, vote.label)] = out.get((vote.stimulus.original_name, vote.label), 0) + vote.count
    return {k: v for k, v in out.items() if v}


def test_ferplus_count_file_imports_counts_and_reports_what_it_cannot_place(study):
    report = votes_import(study=study, source_name="FER+ taggers", data=FERPLUS)
    source = VoteSource.objects.get(study=study, name="FER+ taggers")
    assert source.kind == VoteSource.Kind.COUNTS
    assert counts_of(source) == {("fer0000000.png", "Neutral"): 4, ("fer0000000.png", "Sadness"): 1,
                                 ("fer0000000.png", "Anger"): 3, ("fer0000000.png", "Disgust"): 2,
                                 ("fer0000001.png", "Neutral"): 6, ("fer0000001.png", "Surprise"): 1,
                                 ("fer0000001.png", "Sadness"): 1}
    assert report.images == 2
    assert report.unknown_images == {"fer9999999.png": 7}  # one line, one row per study label
    assert report.unknown_labels == {"unknown": 2}  # Contempt is not in RAF-DB basic-7: its 0 votes are silent
    assert report.created == 14


def test_long_file_maps_aliases_and_paths_and_reports_unknowns(study):
    report = votes_import(study=study, source_name="CIFAR-10H style", data=LONG)
    source = VoteSource.objects.get(name="CIFAR-10H style")
    assert source.kind == VoteSource.Kind.LONG
    assert counts_of(source) == {("fer0000000.png", "Happiness"): 2, ("fer0000001.png", "Sadness"): 1,
                                 ("fer0000001.png", "Fear"): 1}
    times = dict(ImportedVote.objects.filter(source=source).values_list("annotator", "response_ms")
                 .filter(stimulus__original_name="fer0000000.png"))
    assert times == {"a1": 812, "a2": 1500}
    assert report.unknown_labels == {"bored": 1}
    assert report.unknown_images == {"missing.png": 1}
    assert any("response time" in p for p in report.problems)


def test_importing_the_same_file_twice_changes_nothing(study):
    votes_import(study=study, source_name="FER+", data=FERPLUS)
    before = list(ImportedVote.objects.order_by("pk").values())
    again = votes_import(study=study, source_name="FER+", data=FERPLUS)
    assert (again.created, again.updated) == (0, 0) and again.unchanged == 14
    assert list(ImportedVote.objects.order_by("pk").values()) == before


def test_a_corrected_file_updates_in_place(study):
    votes_import(study=study, source_name="FER+", data=FERPLUS)
    fixed = FERPLUS.replace(b"fer0000000.png,4,", b"fer0000000.png,5,")
    report = votes_import(study=study, source_name="FER+", data=fixed)
    assert report.updated == 1 and report.created == 0
    assert counts_of(VoteSource.objects.get(name="FER+"))[("fer0000000.png", "Neutral")] == 5


def test_long_file_annotator_labelling_an_image_twice_keeps_the_first(study):
    data = b"filename,annotator,label\nfer0000000.png,a1,happy\nfer0000000.png,a1,sad\n"
    report = votes_import(study=study, source_name="twice", data=data)
    assert report.created == 1 and "twice" in report.problems[0]


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"foo,bar\n1,2\n", "No file name column"),
    (b"filename,label\nx.png,happy\n", "annotator column"),
    (b"filename,colour\nx.png,3\n", "Neither a label column"),
])
def test_files_that_fit_no_layout_are_clear_errors(study, data, message):
    with pytest.raises(InvalidInput, match=message):
        votes_import(study=study, source_name="bad", data=data)
    assert not VoteSource.objects.filter(name="bad").exists()


def test_layouts_cannot_mix_in_one_source(study):
    votes_import(study=study, source_name="S", data=FERPLUS)
    with pytest.raises(InvalidInput, match="other layout"):
        votes_import(study=study, source_name="S", data=LONG)


def test_bad_counts_are_reported_per_line(study):
    data = b"filename,happy,sad\nfer0000000.png,2,x\nfer0000001.png,1.5,0\nfer0000001.png,3,1\n"
    report = votes_import(study=study, source_name="c", data=data)
    assert len(report.problems) == 2 and report.images == 1


def test_command_prints_the_report_and_fails_cleanly(study, tmp_path, capsys):
    path = tmp_path / "fer2013new.csv"
    path.write_bytes(FERPLUS)
    call_command("import_votes", study.slug, str(path))
    out = capsys.readouterr().out
    assert "fer2013new (counts format)" in out and "unknown images: fer9999999.png" in out
    with pytest.raises(CommandError, match="No study"):
        call_command("import_votes", "nope", str(path))
    with pytest.raises(CommandError, match="No such file|no such file"):
        call_command("import_votes", study.slug, str(tmp_path / "absent.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n")
    with pytest.raises(CommandError, match="No file name column"):
        call_command("import_votes", study.slug, str(bad))
