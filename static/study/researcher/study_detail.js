// Study detail page: the participant link's Copy button, and confirmation before a form marked data-confirm.
(function () {
  var button = document.getElementById("copy-link"), input = document.getElementById("participant-url");
  if (button && input) {
    button.addEventListener("click", function () {
      input.select();
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); }); }
      else { document.execCommand("copy"); done(); }
    });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
