/*
 * Trial page enhancements. The page works without this file (a plain form POST per trial); with it:
 * - the response time is measured from the image's load to the choice and sent as response_ms;
 * - number keys 1..N choose the matching button;
 * - the first choice disables all buttons, so a double click or key repeat never sends twice;
 * - the next trial's image is preloaded once this one is shown;
 * - the vote goes to the JSON API and the next face replaces this one in place: no page load per trial (the server
 *   answers a vote in ≈ 1.2 ms of CPU, against ≈ 10 ms for the form POST and the next page; bench/RESULTS.md). Any
 *   answer but "recorded" (a study paused meanwhile, ...) falls back to the plain form POST, and the server's page
 *   explains; a vote that did arrive is not counted twice (votes are idempotent);
 * - a vote that got no answer (the connection refused or dropped: a web server restarting, a phone between networks)
 *   or a "try again" answer (503 while the database restarts, 502/504 from a proxy) is sent again after 0.5, 1, 2, 4
 *   and 8 s, saying so under the buttons, before it falls back to the form: a restart of a few seconds costs the
 *   participant a short wait, not an error page (bench/RESULTS.md, "Faults"). The waits are ours, not Retry-After's
 *   (5 s for any 503 here), because a restart is usually over within a second;
 * - a vote still unanswered after 3 s says "Saving your answer…" under the buttons, and one unanswered after 15 s (a
 *   hung server or database: nothing refuses, nothing answers) is given up and sent again like a refused one, so a
 *   participant never waits in silence on a request that may never come back;
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

  var RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
  var RETRYABLE_STATUS = [502, 503, 504];
  var SLOW_AFTER_MS = 3000;
  var GIVE_UP_AFTER_MS = 15000;

  function retryDelays() {  // data-retry-delays="50 50" on the form shortens them (the tests do)
    var custom = form.getAttribute("data-retry-delays");
    return custom ? custom.trim().split(/\s+/).map(Number) : RETRY_DELAYS_MS;
  }

  function timing(name, fallback) {  // data-slow-after-ms / data-give-up-after-ms shorten them (the tests do)
    var custom = Number(form.getAttribute(name));
    return custom > 0 ? custom : fallback;
  }

  function sendVote(chosen, labelField, attempt) {
    var abort = window.AbortController ? new window.AbortController() : null;
    var slow = window.setTimeout(function () {
      if (status && !status.textContent) {
        status.textContent = form.getAttribute("data-msg-saving") || "Saving your answer…";
      }
    }, timing("data-slow-after-ms", SLOW_AFTER_MS));
    var giveUp = abort ? window.setTimeout(function () { abort.abort(); },
                                           timing("data-give-up-after-ms", GIVE_UP_AFTER_MS)) : null;
    function answered() {
      window.clearTimeout(slow);
      window.clearTimeout(giveUp);
    }
    window.fetch(voteUrl, {
      method: "POST",
      signal: abort ? abort.signal : undefined,
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
      answered();
      if (response.status === 201) {
        return response.json().then(function (answer) { showNext(answer.trial, chosen, labelField); });
      }
      if (RETRYABLE_STATUS.indexOf(response.status) >= 0) {
        retryOrSubmit(chosen, labelField, attempt);
        return null;
      }
      form.submit();  // the plain POST (label in its hidden field): the server records or explains
      return null;
    }, function () {
      answered();
      retryOrSubmit(chosen, labelField, attempt);  // no answer at all, or none in time (aborted)
    }).catch(function () {
      answered();
      form.submit();
    });
  }

  function retryOrSubmit(chosen, labelField, attempt) {
    var delays = retryDelays();
    if (attempt >= delays.length) {
      form.submit();
      return;
    }
    if (status) {
      status.textContent = form.getAttribute("data-msg-retrying") || "Saving your answer… The connection is slow, trying again.";
    }
    window.setTimeout(function () { sendVote(chosen, labelField, attempt + 1); }, delays[attempt]);
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
      sendVote(chosen, label, 0);
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
