"""The comparison view's confusion heatmap at desktop and phone width: the axis titles ("model", "humans") never
overlap a tick label, and no label is cut off. Saves test-artifacts/compare-heatmap-<width>.png."""
import os
from pathlib import Path

import pytest

from tests.e2e.test_compare_page import login_cookie
from tests.factories import UserFactory
from tests.study.compare_data import build_study

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const root = document.getElementById("confusion");
  return {
    plot: box(root),
    xtitle: box(root.querySelector(".g-xtitle text")), ytitle: box(root.querySelector(".g-ytitle text")),
    xticks: [...root.querySelectorAll(".xaxislayer-above .xtick text")].map(box),
    yticks: [...root.querySelectorAll(".yaxislayer-above .ytick text")].map(box),
  };
}"""


def _overlap(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.mark.parametrize("width", [1280, 390])
def test_heatmap_axis_titles_clear_the_tick_labels(live_server, chromium_browser, width):
    from playwright.sync_api import expect

    owner = UserFactory()
    study, _ = build_study(images=6, voters=8, owner=owner)
    context = chromium_browser.new_context(viewport={"width": width, "height": 900})
    context.add_cookies([login_cookie(owner, live_server)])
    page = context.new_page()
    page.goto(f"{live_server.url}/studies/{study.slug}/compare/")
    expect(page.locator("#confusion .g-ytitle text")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#confusion").screenshot(path=str(ARTIFACTS / f"compare-heatmap-{width}.png"))
    boxes = page.evaluate(BOXES)
    assert len(boxes["xticks"]) >= 5 and len(boxes["yticks"]) >= 5
    assert not [t for t in boxes["xticks"] if _overlap(t, boxes["xtitle"])], "x title over a tick label"
    assert not [t for t in boxes["yticks"] if _overlap(t, boxes["ytitle"])], "y title over a tick label"
    plot = boxes["plot"]
    for tick in boxes["xticks"] + boxes["yticks"] + [boxes["xtitle"], boxes["ytitle"]]:
        assert plot[0] - 0.5 <= tick[0] and tick[2] <= plot[2] + 0.5 and tick[3] <= plot[3] + 0.5, "label cut off"
    context.close()
