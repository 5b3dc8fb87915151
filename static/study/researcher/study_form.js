// New-study form: the adaptive-allocation settings are shown (and sent) only while "Adaptive" is chosen.
// Without JavaScript they stay visible and the server ignores them for a fixed allocation.
(function () {
  "use strict";
  var choice = document.querySelector("select[name=allocation]");
  if (!choice) { return; }
  var inputs = document.querySelectorAll("[data-allocation-only]");

  function update() {
    inputs.forEach(function (input) {
      var shown = choice.value === input.getAttribute("data-allocation-only");
      var row = input.closest("p") || input;
      row.hidden = !shown;
      input.disabled = !shown;
    });
  }

  choice.addEventListener("change", update);
  update();
})();
