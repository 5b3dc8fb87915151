// Model detail page: while a model is pending validation, poll its status, mark the step the worker is on
// (waiting for a worker, then loading and test-running the file) and reload when the worker has decided.
(function poll() {
  var el = document.getElementById("model-status");
  if (!el || el.dataset.pending !== "true") return;
  fetch(el.dataset.statusUrl, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); })
    .then(function (data) {
      if (data.status !== "pending") { location.reload(); return; }
      var queued = document.getElementById("stage-queued"), validating = document.getElementById("stage-validating");
      if (data.stage === "validating" && queued && validating) {
        queued.className = "done";
        validating.className = "current";
      }
      setTimeout(poll, 1000);
    })
    .catch(function () { setTimeout(poll, 3000); });
})();
