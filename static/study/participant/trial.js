/*
 * Trial page enhancements. The page works without this file (a plain form POST per trial); with it:
 * - the response time is measured from the image's load to the choice and sent as response_ms;
 * - number keys 1..N choose the matching button;
 * - the first choice disables all buttons, so a double click or key repeat never sends twice;
 * - the next trial's image is preloaded once this one is shown;
 * - the vote goes to the JSON API and the next face replaces this one in place: no page load per trial (the server
 *   answers a vote in ≈ 1.2 ms of CPU, against ≈ 10 ms for the form POST and the next page; bench/RESULTS.md). Any
 *   answer but "recorded" (a study paused meanwhile, a lost connection, ...) falls back to the plain form POST, and the
 *   server's page explains; a vote that did arrive is not counted twice (votes are idempotent);
 * - Back, or a page restored from the back/forward cache, reloads, so it always shows the current trial.
 */
(function () {
  "use strict";

  var form = document.getElementById("trial-form");
  var image = document.getElementById("stimulus");
  if (!form || !image) { return; }

  var buttons = Array.prototype.slice.call(form.querySelectorAll("button.choice"));
  var responseField = form.elements.namedItem("response_ms");
  var stimulusField = form.elements.namedItem("stimulus");
  var csrfField = form.elements.namedItem("csrfmiddlewaretoken");
  var status = document.getElementById("trial-status");
  var progressBar = document.querySelector(".trial-progress progress");
  var progressLabel = document.getElementById("progress-label");
  var voteUrl = form.getAttribute("data-vote-url");
  var shownAt = null;
  var sent = false;
  var lastClicked = null;
  var titleSuffix = titleEnding();

  function text(name, current, total) {
    return (form.getAttribute("data-text-" + name) || "")
      .replace("{current}", String(current)).replace("{total}", String(total));
  }

  // What the layout adds after "Face 1 of 20" in the document title (e.g. " · Study title"), kept on each swap.
  function titleEnding() {
    var total = progressBar ? progressBar.getAttribute("max") : "";
    var answered = progressBar ? Number(progressBar.getAttribute("value")) : 0;
    var own = text("title", answered + 1, total);
    return own && document.title.indexOf(own) === 0 ? document.title.slice(own.length) : null;
  }

  function setEnabled(enabled) {
    buttons.forEach(function (button) { button.disabled = !enabled; });
  }

  function preloadNext() {
    var url = form.getAttribute("data-next-image");
    if (url) { new Image().src = url; }
  }

  function onShown() {
    if (shownAt !== null || sent) { return; }
    shownAt = window.performance.now();
    setEnabled(true);
    if (status) {
      status.classList.remove("is-error");
      status.textContent = "";  // (after a swap, screen readers hear the progress label: "4 of 20", aria-live)
    }
    preloadNext();
  }

  function onImageError() {
    if (status) {
      status.textContent = form.getAttribute("data-msg-image-error") || "The image could not be loaded. Please reload the page.";
      status.classList.add("is-error");
    }
  }

  image.addEventListener("load", onShown);
  image.addEventListener("error", onImageError);
  // Choices count only once the face is on screen.
  if (image.complete && image.naturalWidth > 0) {
    onShown();
  } else {
    setEnabled(false);
    if (status) { status.textContent = form.getAttribute("data-msg-loading") || "Loading the image…"; }
  }

  buttons.forEach(function (button) {
    button.addEventListener("click", function () { lastClicked = button; });
  });

  function showNext(trial, chosen, labelField) {
    if (!trial || trial.done || !trial.current) {
      window.location.assign(trial && trial.done ? form.getAttribute("data-done-url") : form.action);
      return;
    }
    var number = trial.answered + 1;
    stimulusField.value = trial.current.stimulus;
    responseField.value = "";
    form.setAttribute("data-next-image", trial.next ? trial.next.image_url : "");
    form.removeChild(labelField);
    chosen.classList.remove("is-chosen");
    chosen.blur();
    if (progressBar) {
      progressBar.max = trial.total;
      progressBar.value = trial.answered;
    }
    if (progressLabel) { progressLabel.textContent = text("progress", number, trial.total); }
    if (titleSuffix !== null) { document.title = text("title", number, trial.total) + titleSuffix; }
    shownAt = null;
    sent = false;
    lastClicked = null;
    window.history.pushState({ emostudyTrial: number }, "", window.location.href);
    image.removeAttribute("width");  // the next face's size is not known here; it was preloaded, so no jump
    image.removeAttribute("height");
    image.setAttribute("alt", text("alt", number, trial.total));
    image.src = trial.current.image_url;  // "load" enables the choices again (onShown)
  }

  function sendVote(chosen, labelField) {
    window.fetch(voteUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrfField ? csrfField.value : ""
      },
      body: JSON.stringify({
        stimulus: stimulusField.value, label: chosen.value, response_ms: Number(responseField.value)
      })
    }).then(function (response) {
      if (response.status !== 201) { throw new Error("vote answered " + response.status); }
      return response.json();
    }).then(function (answer) {
      showNext(answer.trial, chosen, labelField);
    }).catch(function () {
      form.submit();  // the plain POST (label in its hidden field): the server records or explains
    });
  }

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
    if (voteUrl && window.fetch && window.history && window.history.pushState) {
      event.preventDefault();
      sendVote(chosen, label);
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var key = (event.key || "").toLowerCase();
    var match = null;
    buttons.forEach(function (button) {
      if (button.getAttribute("data-key") === key) { match = button; }
    });
    if (!match) { return; }
    event.preventDefault();
    if (!match.disabled && !sent) { match.click(); }
  });

  window.addEventListener("popstate", function () { window.location.reload(); });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });
})();
