"""/readyz/ with a database that neither refuses nor answers (frozen: SIGSTOP, a hung host) still answers 503 within
its timeout; bench/load.py's freeze-postgres run had it held for the whole 10 s freeze."""
import threading
import time

import pytest

from webapp import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def hung_database(monkeypatch, settings):
    """The database check blocks until the test releases it; counts how often it was started."""
    settings.READYZ_TIMEOUT = 0.3
    release, started = threading.Event(), []

    def query(timeout):
        started.append(timeout)
        release.wait(10)

    monkeypatch.setattr(health, "_query_database", query)
    monkeypatch.setattr(health, "_pending", None)
    yield release, started
    release.set()


def test_a_hung_database_makes_readyz_answer_503_within_its_timeout(client, hung_database):
    release, started = hung_database
    began = time.monotonic()
    response = client.get("/readyz/")
    assert time.monotonic() - began < 1.5
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "error": "TimeoutError",
                                                     "ms": pytest.approx(300, abs=200)}


def test_probes_during_the_hang_share_one_check_and_the_thawed_database_is_ready_again(client, hung_database):
    release, started = hung_database
    assert [client.get("/readyz/").status_code for _ in range(3)] == [503, 503, 503]
    assert len(started) == 1  # one thread waits on the database, not one per probe
    release.set()
    for _ in range(50):
        if health._pending.done():
            break
        time.sleep(0.02)
    checks = client.get("/readyz/").json()["checks"]
    assert checks["database"]["ok"] is True and len(started) == 2


def test_the_real_check_queries_the_database_on_a_connection_of_its_own(client, settings):
    settings.READYZ_TIMEOUT = 5
    body = client.get("/readyz/").json()
    assert body["checks"]["database"]["ok"] is True
