/*
 * Trial page enhancements. The page works without this file (a plain form POST per trial); with it:
 * - the response time is measured from the image's load to the choice and sent as response_ms;
 * - number keys 1..N choose the matching button;
 * - the first choice disables all buttons, so a double click or key repeat never sends twice;
 * - the next trial's image is preloaded once this one is shown;
 * - a page restored from the back/forward cache reloads, so it always shows the current trial.
 */
(function () {
  "use strict";

  var form = document.getElementById("trial-form");
  var image = document.getElementById("stimulus");
  if (!form || !image) { return; }

  var buttons = Array.prototype.slice.call(form.querySelectorAll("button.choice"));
  var responseField = form.elements.namedItem("response_ms");
  var status = document.getElementById("trial-status");
  var shownAt = null;
  var sent = false;
  var lastClicked = null;

  function setEnabled(enabled) {
    buttons.forEach(function (button) { button.disabled = !enabled; });
  }

  function preloadNext() {
    var url = form.getAttribute("data-next-image");
    if (url) { new Image().src = url; }
  }

  function onShown() {
    if (shownAt !== null) { return; }
    shownAt = window.performance.now();
    setEnabled(true);
    if (status) { status.textContent = ""; }
    preloadNext();
  }

  function onImageError() {
    if (status) {
      status.textContent = "The image could not be loaded. Please reload the page.";
      status.classList.add("is-error");
    }
  }

  // Choices count only once the face is on screen.
  if (image.complete && image.naturalWidth > 0) {
    onShown();
  } else {
    setEnabled(false);
    if (status) { status.textContent = "Loading the image…"; }
    image.addEventListener("load", onShown);
    image.addEventListener("error", onImageError);
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { lastClicked = button; });
  });

  form.addEventListener("submit", function (event) {
    var chosen = event.submitter || lastClicked;
    if (sent || shownAt === null || !chosen || !chosen.value) {
      event.preventDefault();
      return;
    }
    sent = true;
    responseField.value = String(Math.max(0, Math.round(window.performance.now() - shownAt)));
    // Disabled buttons are left out of the submitted data, so the choice travels in a hidden field.
    var label = document.createElement("input");
    label.type = "hidden";
    label.name = "label";
    label.value = chosen.value;
    form.appendChild(label);
    chosen.classList.add("is-chosen");
    setEnabled(false);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var key = event.key;
    var match = null;
    buttons.forEach(function (button) {
      if (button.getAttribute("data-key") === key) { match = button; }
    });
    if (!match) { return; }
    event.preventDefault();
    if (!match.disabled && !sent) { match.click(); }
  });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });
})();
