// First-run progress on the models page: polls the steps' JSON until each has finished, then reloads once
// so the newly registered models appear in the table.
(function () {
  "use strict";
  var root = document.getElementById("first-run");
  if (!root) { return; }
  var wasRunning = false;
  function poll() {
    fetch(root.dataset.statusUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var allFinished = true;
        data.steps.forEach(function (step) {
          var item = root.querySelector("li[data-key='" + step.key + "']");
          if (!step.finished) { allFinished = false; }
          if (!item) { return; }
          item.querySelector(".setup-state").textContent = step.state_display;
          item.querySelector(".setup-bar").style.width = step.percent + "%";
          item.querySelector(".r-progress").setAttribute("aria-valuenow", step.percent);
          item.querySelector(".setup-message").textContent = (step.total ? step.done + "/" + step.total + " · " : "") + step.message;
        });
        if (!allFinished) { wasRunning = true; setTimeout(poll, 2000); }
        else if (wasRunning) { window.location.reload(); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
