// Upload import page: poll the status until the worker has finished, then reload to show the report.
(function poll() {
  var el = document.getElementById("upload-batch");
  if (!el || el.dataset.finished === "true") return;
  fetch(el.dataset.statusUrl, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); })
    .then(function (data) {
      ["done", "total", "imported", "duplicates", "rejected", "faces", "faceless"].forEach(function (key) {
        var node = document.getElementById("batch-" + key);
        if (node) node.textContent = data[key];
      });
      document.getElementById("batch-state").textContent = data.state_display || data.state;
      if (data.finished) { location.reload(); } else { setTimeout(poll, 1000); }
    })
    .catch(function () { setTimeout(poll, 3000); });
})();
