"""Many participants at once, over real HTTP against a live server on PostgreSQL.

Each simulated participant has its own cookie jar; all of them press "Start" at the same moment, and
every vote is sent twice concurrently (a double click). Afterwards every vote must be stored exactly
once and the votes per image must be balanced within one, never above the study's quota.
"""
import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db.models import Count
from django.test.testcases import LiveServerThread

from study.models import Assignment, Participant, Stimulus, Vote
from tests.factories import StimulusFactory, StudyFactory
from tests.services import require_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STIMULUS_RE = re.compile(r'name="stimulus" value="([0-9a-f-]{36})"')
HIDDEN_PARAM_RE = re.compile(r'name="(p_[^"]+)" value="([^"]*)"')
FULL_TEXT = "This study is full"


class _BusyServer(ThreadedWSGIServer):
    # Django's test server keeps a listen backlog of 10; a production server (gunicorn) keeps 2048.
    # With ~100 connections opened at once, the small backlog makes the kernel reset connections.
    request_queue_size = 1024


class _BusyServerThread(LiveServerThread):
    server_class = _BusyServer


@pytest.fixture
def busy_live_server(transactional_db, settings):
    """Like pytest-django's live_server, with a listen backlog that fits 100 simultaneous requests."""
    thread = _BusyServerThread("localhost", static_handler=StaticFilesHandler, connections_override={})
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    yield f"http://localhost:{thread.port}"
    thread.terminate()


class Browser:
    """One participant's HTTP client: its own cookies, redirects followed like a browser."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, data: dict | None = None) -> tuple[str, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with self.opener.open(self.base_url + path, data=body, timeout=60) as response:
            return urllib.parse.urlsplit(response.geturl()).path, response.read().decode()


@dataclass
class Outcome:
    state: str = "not started"
    votes_sent: int = 0
    errors: list[str] = field(default_factory=list)


def take_part(base_url: str, slug: str, index: int, start_line: threading.Barrier, outcome: Outcome) -> None:
    browser = Browser(base_url)
    try:
        _, page = browser.request(f"/s/{slug}/?PROLIFIC_PID=pid-{index}")
        consent = {"consent": "agree", "csrfmiddlewaretoken": CSRF_RE.search(page).group(1)}
        path, page = browser.request(f"/s/{slug}/consent/", {**consent, **dict(HIDDEN_PARAM_RE.findall(page))})
        assert path.endswith("/instructions/"), path
        start_line.wait(timeout=60)  # everyone asks for their images at the same moment
        path, page = browser.request(f"/s/{slug}/start/", {"csrfmiddlewaretoken": CSRF_RE.search(page).group(1)})
        if FULL_TEXT in page:
            outcome.state = "full"
            return
        while path.endswith("/trial/"):
            vote = {
                "csrfmiddlewaretoken": CSRF_RE.search(page).group(1),
                "stimulus": STIMULUS_RE.search(page).group(1),
                "label": ["Fear", "Happiness", "Neutral"][index % 3],
                "response_ms": str(300 + index),
            }
            twin = threading.Thread(target=_quiet_post, args=(browser, f"/s/{slug}/trial/", vote, outcome))
            twin.start()  # the double click: the same vote, concurrently
            path, page = browser.request(f"/s/{slug}/trial/", vote)
            twin.join()
            outcome.votes_sent += 2
        assert path.endswith("/done/") and "completion code" in page, path
        outcome.state = "done"
    except Exception as exc:
        start_line.abort()
        outcome.errors.append(f"participant {index}: {exc!r}")


def _quiet_post(browser: Browser, path: str, data: dict, outcome: Outcome) -> None:
    try:
        browser.request(path, data)
    except urllib.error.URLError as exc:
        outcome.errors.append(f"double submit: {exc!r}")


@pytest.fixture(autouse=True)
def _one_address_for_everyone(settings):
    """Every simulated participant comes from 127.0.0.1, as a lab behind one address: no start limit."""
    settings.PARTICIPANT_STARTS_PER_CLIENT = 0


def run_participants(base_url: str, study, n: int) -> list[Outcome]:
    outcomes = [Outcome() for _ in range(n)]
    start_line = threading.Barrier(n)
    threads = [
        threading.Thread(target=take_part, args=(base_url, study.slug, i, start_line, outcomes[i]))
        for i in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    errors = [error for outcome in outcomes for error in outcome.errors]
    assert not errors, errors[:5]
    return outcomes


def votes_per_image(study) -> list[int]:
    counted = dict(Vote.objects.filter(stimulus__study=study).values_list("stimulus").annotate(n=Count("pk")))
    return [counted.get(pk, 0) for pk in Stimulus.objects.filter(study=study).values_list("pk", flat=True)]


def assert_every_vote_stored_exactly_once(study) -> None:
    assignments = Assignment.objects.filter(participant__study=study)
    assert assignments.filter(answered_at__isnull=True).count() == 0
    assert Vote.objects.filter(stimulus__study=study).count() == assignments.count()
    assert set(Vote.objects.filter(stimulus__study=study).values_list("participant", "stimulus")) == set(
        assignments.values_list("participant", "stimulus")
    )


def test_fifty_simultaneous_participants_each_vote_once_and_images_stay_balanced(busy_live_server):
    require_postgres()
    study = StudyFactory(votes_per_image=10, images_per_participant=4)
    StimulusFactory.create_batch(30, study=study)  # 50 x 4 = 200 votes for 300 slots: 6 or 7 each

    outcomes = run_participants(busy_live_server, study, 50)

    assert Counter(o.state for o in outcomes) == {"done": 50}
    assert_every_vote_stored_exactly_once(study)
    counts = votes_per_image(study)
    assert sum(counts) == 200 and max(counts) - min(counts) <= 1, counts
    assert Participant.objects.filter(study=study, finished_at__isnull=False).count() == 50
    assert sorted(Participant.objects.filter(study=study).values_list("external_ids__PROLIFIC_PID", flat=True)) == sorted(
        f"pid-{i}" for i in range(50)
    )


def test_oversubscribed_study_fills_every_image_exactly_to_its_quota(busy_live_server):
    require_postgres()
    study = StudyFactory(votes_per_image=6, images_per_participant=3)
    StimulusFactory.create_batch(20, study=study)  # 120 slots for 50 x 3 = 150 wanted

    outcomes = run_participants(busy_live_server, study, 50)

    states = Counter(o.state for o in outcomes)
    assert states["done"] + states["full"] == 50 and states["full"] >= 10
    assert_every_vote_stored_exactly_once(study)
    assert votes_per_image(study) == [6] * 20


def test_adaptive_allocation_under_fifty_simultaneous_participants(busy_live_server):
    """Adaptive studies take the same study lock: every vote once, the minimum reached evenly, the maximum
    never passed."""
    require_postgres()
    study = StudyFactory(allocation="adaptive", min_votes_per_image=3, max_votes_per_image=8,
                         stability_threshold=0.001, images_per_participant=4)
    StimulusFactory.create_batch(30, study=study)  # 200 votes: 90 reach the minimum, 110 go where unsettled

    outcomes = run_participants(busy_live_server, study, 50)

    assert Counter(o.state for o in outcomes) == {"done": 50}
    assert_every_vote_stored_exactly_once(study)
    counts = votes_per_image(study)
    assert sum(counts) == 200 and min(counts) >= 3 and max(counts) <= 8, counts
