"""The JSON vote and trial state in raw SQL (study/api/participant.py, study.services.votes.vote_submit): the same
answers as the DRF views they replace on the hot path, the same guarantees, and fewer statements. Runs on SQLite
and, with DATABASE_URL=postgres://..., on PostgreSQL (where the concurrency test also runs)."""
import functools
import json
import threading

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone

from study.api.views import ParticipantTrialApi, ParticipantVoteCreateApi
from study.models import Assignment, Participant, Vote
from study.services.votes import vote_submit
from tests.factories import StimulusFactory, StudyFactory
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


def _join(client, study):
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
    client.post(f"/s/{study.slug}/start/")
    participant = Participant.objects.filter(study=study, is_test=False).latest("pk")
    sequence = list(Assignment.objects.filter(participant=participant).select_related("stimulus").order_by("position"))
    return participant, sequence


@pytest.fixture
def started(client):
    study = StudyFactory(status="live", images_per_participant=4, gold_rate=0.25, votes_per_image=5)
    StimulusFactory.create_batch(6, study=study)
    StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")
    participant, sequence = _join(client, study)
    return study, participant, sequence


def _vote(client, study, assignment, label="Fear", response_ms=700, **extra):
    return client.post(f"/api/s/{study.slug}/votes/", json.dumps(
        {"stimulus": str(assignment.stimulus.public_id), "label": label, "response_ms": response_ms, **extra}),
        content_type="application/json")


def _drf_answer(view_class, client, method: str, path: str, body: dict | None = None):
    """What the DRF class answers to the same request (the general path, called directly)."""
    factory = RequestFactory()
    if method == "GET":
        request = factory.get(path)
    else:
        request = factory.post(path, json.dumps(body), content_type="application/json")
    request.COOKIES.update({name: morsel.value for name, morsel in client.cookies.items()})
    request._dont_enforce_csrf_checks = True
    response = view_class.as_view()(request, slug=path.split("/")[3])
    response.render()
    return response.status_code, json.loads(response.content)


def test_the_vote_answer_is_the_drf_serializers_answer(client, started):
    study, participant, sequence = started
    body = {"stimulus": str(sequence[0].stimulus.public_id), "label": "fear ", "response_ms": 700}
    fast = client.post(f"/api/s/{study.slug}/votes/", json.dumps(body), content_type="application/json")
    assert fast.status_code == 201
    # the general path answers a repeat with the first vote unchanged: the same vote, the same trial state
    status, general = _drf_answer(ParticipantVoteCreateApi, client, "POST", f"/api/s/{study.slug}/votes/", body)
    assert status == 201 and fast.json() == general
    assert fast.json()["label"] == "Fear" and fast.json()["participant"] == str(participant.public_id)


def test_the_trial_state_is_the_drf_views_answer(client, started):
    study, participant, sequence = started
    _vote(client, study, sequence[0])
    fast = client.get(f"/api/s/{study.slug}/trial/")
    status, general = _drf_answer(ParticipantTrialApi, client, "GET", f"/api/s/{study.slug}/trial/")
    assert fast.status_code == status == 200 and fast.json() == general
    assert fast.json()["current"]["stimulus"] == str(sequence[1].stimulus.public_id)


def test_a_vote_is_1_statement_on_postgresql_3_on_sqlite_and_the_trial_state_1(client, started,
                                                                                 django_assert_num_queries):
    study, participant, sequence = started
    regular = next(a for a in sequence if not a.stimulus.is_gold)
    # PostgreSQL: one autocommit statement. SQLite: SAVEPOINT, lookup, INSERT, the assignment's UPDATE, RELEASE
    # (BEGIN/COMMIT outside tests)
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 5):
        assert _vote(client, study, regular).status_code == 201
    with django_assert_num_queries(1):
        assert client.get(f"/api/s/{study.slug}/trial/").status_code == 200


def test_a_repeat_returns_the_first_vote_unchanged_and_writes_nothing(client, started):
    study, participant, sequence = started
    first = _vote(client, study, sequence[0], "Fear", 700).json()
    again = _vote(client, study, sequence[0], "Anger", 50).json()
    assert (again["id"], again["label"], again["response_ms"], again["created_at"]) == \
        (first["id"], "Fear", 700, first["created_at"])
    assert again["trial"] == first["trial"]
    assert Vote.objects.filter(participant=participant).count() == 1


@pytest.mark.parametrize("body, message", [
    ({"label": "Bored"}, "Unknown emotion 'Bored'"),
    ({"response_ms": -1}, "greater than or equal to 0"),
    ({"response_ms": 3_600_001}, "less than or equal to 3600000"),
    ({"stimulus": "not-a-uuid"}, "valid UUID"),
])
def test_bad_input_gets_the_same_400_as_before_and_writes_nothing(client, started, body, message):
    study, participant, sequence = started
    payload = {"stimulus": str(sequence[0].stimulus.public_id), "label": "Fear", "response_ms": 700, **body}
    response = client.post(f"/api/s/{study.slug}/votes/", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400 and message in json.dumps(response.json())
    assert not Vote.objects.exists() and not Assignment.objects.filter(answered_at__isnull=False).exists()


def test_what_drf_accepts_beyond_the_fast_path_still_records_a_vote(client, started):
    """A form-encoded vote, or response_ms as a string: the general path records them as before."""
    study, participant, sequence = started
    form = client.post(f"/api/s/{study.slug}/votes/", {"stimulus": str(sequence[0].stimulus.public_id),
                                                       "label": "Fear", "response_ms": "800"})
    text = client.post(f"/api/s/{study.slug}/votes/", json.dumps({
        "stimulus": str(sequence[1].stimulus.public_id), "label": "Fear", "response_ms": "900"}),
        content_type="application/json")
    assert (form.status_code, text.status_code) == (201, 201)
    assert text.json()["trial"]["answered"] == 2
    assert sorted(Vote.objects.values_list("response_ms", flat=True)) == [800, 900]


def test_no_participant_unknown_study_and_foreign_images_answer_as_before(client, started):
    study, participant, sequence = started
    other = StimulusFactory(study=study)
    not_assigned = _vote(client, study, Assignment(stimulus=other))
    assert not_assigned.status_code == 400 and "not one of your trials" in not_assigned.json()["detail"]
    client.cookies.clear()
    assert _vote(client, study, sequence[0]).status_code == 403
    assert client.get(f"/api/s/{study.slug}/trial/").status_code == 403
    assert client.get("/api/s/no-such-study/trial/").status_code == 404
    assert not Vote.objects.exists()


def test_a_cookie_of_another_study_is_not_a_participant_here(client, started):
    study, participant, sequence = started
    other_study = StudyFactory(status="live")
    client.cookies[f"emostudy_participant_{other_study.pk}"] = participant.token  # right token, wrong study's cookie
    del client.cookies[f"emostudy_participant_{study.pk}"]
    assert _vote(client, study, sequence[0]).status_code == 403
    assert client.get(f"/api/s/{study.slug}/trial/").status_code == 403


def test_paused_studies_refuse_new_votes_unless_starters_may_finish(client, started):
    study, participant, sequence = started
    _vote(client, study, sequence[0])
    study.status, study.finish_when_paused = "paused", False
    study.save()
    refused = _vote(client, study, sequence[1])
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    assert client.get(f"/api/s/{study.slug}/trial/").status_code == 409
    assert _vote(client, study, sequence[0], "Anger").json()["label"] == "Fear"  # a repeat still answers the first
    study.finish_when_paused = True
    study.save()
    assert _vote(client, study, sequence[1]).status_code == 201
    assert Vote.objects.filter(participant=participant).count() == 2


def test_a_preview_votes_on_a_draft_study(client):
    from study.services.participants import participant_create

    study = StudyFactory(status="draft", images_per_participant=2, gold_rate=0)
    StimulusFactory.create_batch(3, study=study)
    preview = participant_create(study=study, external_ids={}, is_test=True)
    from study.services.assignments import assignment_allocate

    first = assignment_allocate(participant=preview)[0]
    client.cookies[f"emostudy_participant_{study.pk}"] = preview.token
    answer = _vote(client, study, first).json()
    assert answer["participant_is_test"] and answer["participant_excluded"] and answer["trial"]["answered"] == 1


def test_gold_items_are_scored_and_the_last_vote_finishes_and_excludes(client, started):
    study, participant, sequence = started
    answers = [_vote(client, study, a, "Anger" if a.stimulus.is_gold else "Fear").json() for a in sequence]
    participant.refresh_from_db()
    assert (participant.gold_answered, participant.gold_correct) == (1, 0)
    assert participant.finished_at is not None and participant.excluded  # 0 of 1 gold right, below 75 %
    assert answers[-1]["participant_excluded"] and answers[-1]["trial"]["done"]
    assert not any(a["participant_excluded"] for a in answers[:-1])
    assert answers[-1]["trial"]["current"] is None and answers[-1]["trial"]["next"] is None


@pytest.mark.parametrize("gold_label", ["Happiness", "Anger"])
@pytest.mark.parametrize("excluded_before", [False, True])
def test_the_last_vote_finishes_the_participant_as_participant_finish_does(client, started, gold_label,
                                                                           excluded_before):
    """The hot path finishes in raw SQL; a twin participant who votes the same through the general path (a form
    body goes to DRF: vote_record, then the ORM's participant_finish) must end up in the same state."""
    study, participant, sequence = started
    twin_client = Client()
    twin, twin_sequence = _join(twin_client, study)
    assert [a.stimulus.is_gold for a in twin_sequence].count(True) == [a.stimulus.is_gold for a in sequence].count(True)
    if excluded_before:  # a researcher's exclusion before the end: kept, its reason replaced only by a gold failure
        Participant.objects.filter(pk__in=[participant.pk, twin.pk]).update(
            excluded=True, exclusion_reason="Excluded by the researcher.")
    for fast, general in zip(sequence, twin_sequence, strict=True):
        label = gold_label if fast.stimulus.is_gold else "Fear"
        assert _vote(client, study, fast, label).status_code == 201
        response = twin_client.post(f"/api/s/{study.slug}/votes/", {
            "stimulus": str(general.stimulus.public_id), "label": gold_label if general.stimulus.is_gold else "Fear",
            "response_ms": 700})
        assert response.status_code == 201
    participant.refresh_from_db()
    twin.refresh_from_db()
    fields = ("gold_answered", "gold_correct", "gold_score", "excluded", "exclusion_reason")
    assert participant.finished_at is not None and twin.finished_at is not None
    assert [getattr(participant, f) for f in fields] == [getattr(twin, f) for f in fields]
    assert participant.excluded == (excluded_before or gold_label == "Anger")


def test_a_right_gold_answer_counts(client, started):
    study, participant, sequence = started
    gold = next(a for a in sequence if a.stimulus.is_gold)
    _vote(client, study, gold, "happiness")
    participant.refresh_from_db()
    assert (participant.gold_answered, participant.gold_correct) == (1, 1)


def test_the_answered_assignment_frees_nothing_and_counts_for_the_quota(client, started):
    """The quota's load (votes + held places) of an image stays 1 across its vote: the vote replaces the hold."""
    from study.selectors.participants import stimuli_with_load

    study, participant, sequence = started
    target = next(a for a in sequence if not a.stimulus.is_gold).stimulus
    before = stimuli_with_load(study=study).get(pk=target.pk)
    _vote(client, study, Assignment(stimulus=target))
    after = stimuli_with_load(study=study).get(pk=target.pk)
    assert (before.n_votes, before.n_open, after.n_votes, after.n_open) == (0, 1, 1, 0)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_two_threads_submitting_the_same_vote_store_one_row():
    """PostgreSQL: the lookup's FOR UPDATE makes the second submit wait, see the first, and return it. Six images,
    each voted by two threads at once with different labels (without the lock this fails most runs)."""
    require_postgres()
    from study.services.assignments import assignment_allocate
    from tests.factories import ParticipantFactory

    study = StudyFactory(status="live", images_per_participant=6, gold_rate=0)
    StimulusFactory.create_batch(6, study=study)
    participant = ParticipantFactory(study=study)
    keys = [a.stimulus.public_id for a in assignment_allocate(participant=participant)]
    cookies = {f"emostudy_participant_{study.pk}": participant.token}
    for answered, key in enumerate(keys, start=1):
        start, receipts, errors = threading.Barrier(2), [], []

        def submit(label, key=key, start=start, receipts=receipts, errors=errors):
            try:
                start.wait(timeout=10)
                receipts.append(vote_submit(slug=study.slug, cookies=cookies, stimulus_public_id=key, label=label,
                                            response_ms=500))
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=submit, args=(label,)) for label in ("Fear", "Anger")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and len(receipts) == 2
        assert receipts[0].vote_id == receipts[1].vote_id and receipts[0].label == receipts[1].label
        assert {r.answered for r in receipts} == {answered}
    assert Vote.objects.filter(participant=participant).count() == 6
    participant.refresh_from_db()
    assert participant.finished_at is not None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_postgresql_plans_the_hot_statements_once_per_connection(client, started, settings):
    """The vote's lookup and writes and the trial state run as prepared statements (study/rawsql.py), unless the
    setting turns them off (a connection pooler that cannot keep them). On a new connection: none prepared yet."""
    require_postgres()
    study, participant, sequence = started
    connection.close()

    def prepared() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_prepared_statements")  # Django's own cursors never prepare
            return cursor.fetchone()[0]

    regular = [a for a in sequence if not a.stimulus.is_gold]  # a gold item would add its counters' update
    settings.RAW_SQL_PREPARED_STATEMENTS = False
    _vote(client, study, regular[0])
    assert prepared() == 0
    settings.RAW_SQL_PREPARED_STATEMENTS = True
    _vote(client, study, regular[1])
    client.get(f"/api/s/{study.slug}/trial/")
    assert prepared() == 2  # the vote's one statement, the trial state
    assert Vote.objects.filter(participant=participant).count() == 2


def _tokens(participant) -> list[tuple[int, str]]:
    return [(participant.study_id, participant.token)]


@pytest.mark.integration
def test_postgresql_writes_a_plain_vote_in_one_statement_as_the_transaction_would(started):
    """The one statement's receipt is the transaction's: the transaction, given the same vote again, finds it
    answered and returns the first vote, with the same progress and the same next images."""
    require_postgres()
    from study.services.votes import _vote_in_one_statement, _vote_transaction

    study, participant, sequence = started
    plain = [a for a in sequence if not a.stimulus.is_gold][:2]
    for assignment in plain:
        vote = {"slug": study.slug, "tokens": _tokens(participant), "stimulus_public_id": assignment.stimulus.public_id,
                "label": "Fear", "response_ms": 812}
        receipt = _vote_in_one_statement(**vote)
        assert receipt is not None and receipt == _vote_transaction(**{**vote, "label": "Anger", "response_ms": 5})
        stored = Vote.objects.get(pk=receipt.vote_id)
        assert (stored.participant_id, stored.stimulus_id, stored.label, stored.response_ms, stored.created_at) == \
            (participant.pk, assignment.stimulus_id, "Fear", 812, receipt.created_at)
        assert Assignment.objects.get(pk=assignment.pk).answered_at == receipt.created_at
    assert Vote.objects.filter(participant=participant).count() == 2


@pytest.mark.integration
@pytest.mark.parametrize("case", ["label in another case", "repeat", "gold item", "last vote", "paused",
                                  "cookie of another study", "bad response time"])
def test_postgresql_leaves_every_vote_that_is_not_plain_to_the_transaction(client, started, case):
    """What the one statement must not decide writes nothing there; vote_submit then answers through the
    transaction as before (the other tests of this file check those answers)."""
    require_postgres()
    from study.models import Study
    from study.services.votes import _vote_in_one_statement

    study, participant, sequence = started
    regular = [a for a in sequence if not a.stimulus.is_gold]
    target, label, tokens, response_ms = regular[0], "Fear", _tokens(participant), 700
    if case == "label in another case":
        label = "fear"
    elif case == "repeat":
        assert _vote(client, study, target).status_code == 201
    elif case == "gold item":
        target = next(a for a in sequence if a.stimulus.is_gold)
    elif case == "last vote":
        Assignment.objects.filter(participant=participant).exclude(pk=target.pk).update(answered_at=timezone.now())
    elif case == "paused":
        Study.objects.filter(pk=study.pk).update(status="paused", finish_when_paused=False)
    elif case == "cookie of another study":
        tokens = [(StudyFactory().pk, participant.token)]
    elif case == "bad response time":
        response_ms = -1
    votes_before = Vote.objects.count()
    answered_before = Assignment.objects.filter(answered_at__isnull=False).count()
    assert _vote_in_one_statement(slug=study.slug, tokens=tokens, stimulus_public_id=target.stimulus.public_id,
                                  label=label, response_ms=response_ms) is None
    assert (Vote.objects.count(), Assignment.objects.filter(answered_at__isnull=False).count()) == \
        (votes_before, answered_before)


@pytest.mark.integration
def test_postgresql_writes_plain_votes_of_previews_and_of_starters_finishing_a_paused_study(client):
    """The one statement's copy of participant_may_continue: a preview votes on a draft study, and a starter on a
    paused study that lets starters finish."""
    require_postgres()
    from study.models import Study
    from study.services.votes import _vote_in_one_statement

    study = StudyFactory(status="live", images_per_participant=5, gold_rate=0)
    StimulusFactory.create_batch(6, study=study)
    participant, sequence = _join(client, study)
    Study.objects.filter(pk=study.pk).update(status="paused", finish_when_paused=True)
    assert _vote_in_one_statement(slug=study.slug, tokens=_tokens(participant), label="Fear", response_ms=1,
                                  stimulus_public_id=sequence[0].stimulus.public_id) is not None
    Study.objects.filter(pk=study.pk).update(status="draft")
    assert _vote_in_one_statement(slug=study.slug, tokens=_tokens(participant), label="Fear", response_ms=1,
                                  stimulus_public_id=sequence[1].stimulus.public_id) is None
    Participant.objects.filter(pk=participant.pk).update(is_test=True)
    assert _vote_in_one_statement(slug=study.slug, tokens=_tokens(participant), label="Fear", response_ms=1,
                                  stimulus_public_id=sequence[1].stimulus.public_id) is not None


def _race(submits) -> list:
    """Run the callables at once (one thread and database connection each); their results, or their errors."""
    start, results = threading.Barrier(len(submits)), []

    def run(submit):
        try:
            start.wait(timeout=10)
            results.append(submit())
        except Exception as exc:
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(submit,)) for submit in submits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["vote_submit", "vote_record"])
def test_two_last_votes_at_once_on_different_images_finish_the_participant(path):
    """PostgreSQL: a participant's last two votes sent at once (a scripted client) each lock only their own
    assignment; without the participant's lock each counted the other as unanswered and nobody finished them.
    Five participants, each voting their last two images from two threads at once."""
    require_postgres()
    from study.services.assignments import assignment_allocate
    from study.services.votes import vote_record
    from tests.factories import ParticipantFactory

    study = StudyFactory(status="live", images_per_participant=2, gold_rate=0, votes_per_image=10)
    StimulusFactory.create_batch(2, study=study)
    for _ in range(5):
        participant = ParticipantFactory(study=study)
        stimuli = [a.stimulus for a in assignment_allocate(participant=participant)]
        cookies = {f"emostudy_participant_{study.pk}": participant.token}
        if path == "vote_submit":
            submits = [functools.partial(vote_submit, slug=study.slug, cookies=cookies, stimulus_public_id=s.public_id,
                                         label="Fear", response_ms=500) for s in stimuli]
        else:  # each thread loads the participant on its own connection
            submits = [lambda s=s, pk=participant.pk: vote_record(participant=Participant.objects.get(pk=pk), stimulus=s,
                                                                  label="Fear", response_ms=500) for s in stimuli]
        results = _race(submits)
        assert not [r for r in results if isinstance(r, Exception)] and len(results) == 2
        participant.refresh_from_db()
        assert Vote.objects.filter(participant=participant).count() == 2
        assert participant.finished_at is not None
