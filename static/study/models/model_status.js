// Model detail page: while a checkpoint is pending validation, poll its status and reload when it is decided.
(function poll() {
  var el = document.getElementById("model-status");
  if (!el || el.dataset.pending !== "true") return;
  fetch(el.dataset.statusUrl, {headers: {"Accept": "application/json"}}).then(function (r) { return r.json(); })
    .then(function (data) { if (data.status !== "pending") { location.reload(); } else { setTimeout(poll, 1000); } })
    .catch(function () { setTimeout(poll, 3000); });
})();
