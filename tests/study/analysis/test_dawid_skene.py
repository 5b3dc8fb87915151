"""The numpy Dawid-Skene gives what crowd-kit's DawidSkene gives (priors, error matrices, posteriors), on crowds
with spammers, unused labels, images without votes and repeated votes; and the participants page no longer
imports crowd-kit (whose import cost its first view seconds)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from study.analysis import aggregation as agg

ROOT = Path(__file__).resolve().parents[3]


def _crowd(seed: int, n_tasks: int = 40, n_labels: int = 6, unused: int = 1) -> agg.Votes:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels - unused, n_tasks)
    task, worker, label = [], [], []
    for w in range(9):
        accuracy = 0.85 if w < 6 else 1 / n_labels  # three spammers
        for image in rng.choice(n_tasks - 2, size=25, replace=False):  # the last two images get no votes
            said = truth[image] if rng.random() < accuracy else rng.integers(0, n_labels - unused)
            task.append(image), worker.append(f"w{w}"), label.append(said)
    task.append(task[0]), worker.append(worker[0]), label.append(label[0])  # one repeated vote
    return agg.Votes.from_lists(task, worker, label, n_tasks=n_tasks, n_labels=n_labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_dawid_skene_matches_crowd_kit(seed):
    votes = _crowd(seed)
    model = agg._model_probas("dawid_skene", votes, 0)  # crowd-kit, the reference
    fit = agg.dawid_skene(votes)
    k = votes.n_labels
    assert np.allclose(fit.prior, model.priors_.reindex(range(k), fill_value=0.0).to_numpy(), atol=1e-8)
    for worker, errors in zip(fit.workers, fit.errors, strict=True):
        expected = model.errors_.loc[worker].reindex(index=range(k), columns=range(k), fill_value=0.0).to_numpy()
        assert np.allclose(errors, expected, atol=1e-8), worker
    expected = agg._probas_to_array(model.probas_, votes)
    assert np.allclose(fit.probas, expected, atol=1e-8, equal_nan=True)
    assert np.isnan(fit.probas[-2:]).all() and np.allclose(fit.probas[:-2].sum(1), 1)
    assert np.allclose(agg.aggregate("dawid_skene", votes), expected, atol=1e-8, equal_nan=True)


def test_the_participants_page_analysis_does_not_import_crowd_kit():
    probe = ("import sys; from study.analysis import aggregation as a; "
             "v = a.Votes.from_lists([0, 0, 1], ['x', 'y', 'x'], [0, 1, 1], n_tasks=2, n_labels=2); "
             "a.dawid_skene_quality(v); a.aggregate('dawid_skene', v); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('crowdkit', 'pandas', 'sklearn', 'nltk')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
