// Live progress of a prediction job: polls the job's JSON status until it finishes.
(function () {
  "use strict";
  var root = document.getElementById("job");
  if (!root) { return; }
  function set(id, value) { document.getElementById(id).textContent = value; }
  function poll() {
    fetch(root.dataset.statusUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) { return response.json(); })
      .then(function (job) {
        var share = job.total ? Math.round(100 * job.done / job.total) : 0;
        document.getElementById("job-bar").style.width = share + "%";
        set("job-state", job.state.charAt(0).toUpperCase() + job.state.slice(1));
        set("job-done", job.done); set("job-total", job.total); set("job-failed", job.failed);
        var list = document.getElementById("job-errors");
        list.innerHTML = "";
        job.errors.forEach(function (e) {
          var item = document.createElement("li");
          item.textContent = (e.file || "") + " " + e.error;
          list.appendChild(item);
        });
        if (job.finished) { var form = document.querySelector("form[action$='/cancel/']"); if (form) { form.remove(); } }
        else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  poll();
})();
