/* The demo page: get a photo (drop, file picker, paste, webcam), upload it, poll the status JSON, draw the
   numbered boxes and one Plotly chart per face with every model's distribution side by side. */
(function () {
  "use strict";
  const form = document.getElementById("demo-form");
  const input = document.getElementById("photo-input");
  const drop = document.getElementById("drop-zone");
  const statusLine = document.getElementById("demo-status");
  const resultSection = document.getElementById("demo-result");
  const photo = document.getElementById("photo");
  const boxes = document.getElementById("boxes");
  const facesNode = document.getElementById("faces");
  const noFace = document.getElementById("no-face");
  const timing = document.getElementById("timing");
  const video = document.getElementById("camera");
  const camStart = document.getElementById("camera-start");
  const camShoot = document.getElementById("camera-shoot");
  const camStop = document.getElementById("camera-stop");
  const COLORS = ["#2457c5", "#d9622b", "#2a9d5c", "#8e44ad", "#c0392b"];
  let lastBlob = null;
  let stream = null;
  let busy = false;

  function say(text, isError) {
    if (isError && text) text = text.charAt(0).toUpperCase() + text.slice(1);  // server reasons start in lower case
    statusLine.textContent = text;
    statusLine.classList.toggle("is-error", !!isError);
  }

  function pct(p) { return Math.round(p * 100) + "%"; }

  async function send(blob, wholeImage) {
    if (busy) return;
    if (!blob || !blob.size) { say("That file is empty.", true); return; }
    busy = true;
    lastBlob = blob;
    const started = performance.now();
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("photo", blob, blob.name || "photo.jpg");
    if (document.getElementById("donate").checked) data.append("donate", "1");
    if (wholeImage) data.append("whole_image", "1");
    say("Uploading…");
    try {
      const response = await fetch(form.action, {method: "POST", body: data, credentials: "same-origin"});
      const body = await response.json().catch(() => ({error: "The server answered " + response.status + "."}));
      if (!response.ok) { say(body.error || ("Upload refused (" + response.status + ")."), true); return; }
      if (photo.dataset.url) URL.revokeObjectURL(photo.dataset.url);
      photo.dataset.url = URL.createObjectURL(blob);
      photo.src = photo.dataset.url;
      say("Looking for faces…");
      const done = await poll(body.status_url);
      if (done) show(done, performance.now() - started);
    } catch (err) {
      say("The upload failed: the server could not be reached.", true);
    } finally {
      busy = false;
    }
  }

  async function poll(url) {
    const deadline = Date.now() + 180000;
    let wait = 250;
    while (Date.now() < deadline) {
      const response = await fetch(url, {credentials: "same-origin", cache: "no-store"});
      const body = await response.json().catch(() => ({}));
      if (!response.ok) { say(body.error || "The result is no longer available.", true); return null; }
      if (body.state === "done") return body.result;
      if (body.state === "failed") { say(body.error || "The analysis failed.", true); return null; }
      say(body.state === "running" ? "Analysing…" : "Waiting for a free worker…");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(1000, wait * 1.5);
    }
    say("No result after three minutes; the workers are busy. Try again later.", true);
    return null;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(result, elapsedMs) {
    resultSection.hidden = false;
    boxes.setAttribute("viewBox", "0 0 " + result.width + " " + result.height);
    boxes.setAttribute("preserveAspectRatio", "none");
    boxes.replaceChildren();
    facesNode.replaceChildren();
    const stroke = Math.max(2, Math.round(Math.max(result.width, result.height) / 250));
    // Face numbers scale with the photo, so they stay readable when it is shown phone-sized.
    const numberSize = Math.max(stroke * 8, Math.round(Math.max(result.width, result.height) / 24));
    const models = result.models || [];
    noFace.hidden = result.faces.length > 0;
    if (!models.length) say("No demo model is registered, so faces are found but not classified.", true);
    for (const face of result.faces) {
      const [x0, y0, x1, y1] = face.box;
      if (!result.whole_image) {
        boxes.appendChild(svg("rect", {x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none",
          stroke: "#ffd400", "stroke-width": stroke}));
        boxes.appendChild(svg("text", {x: x0 + stroke, y: Math.max(y0 - stroke, numberSize * 0.8), fill: "#ffd400",
          "font-size": numberSize, "font-weight": "bold", stroke: "#000", "stroke-width": stroke / 3}, String(face.number)));
      }
      facesNode.appendChild(faceCard(face, models, result.whole_image, result.va_model));
    }
    const found = result.whole_image ? "Whole image classified" :
      (result.faces.length === 1 ? "1 face found" : result.faces.length + " faces found");
    say(found + (result.donated ? " · " + result.donated + " face crop(s) donated, thank you" : "") + ".");
    timing.textContent = "Time taken: " + (elapsedMs / 1000).toFixed(2) + " s in all (upload, queue, analysis); " +
      "detection and models on the server: " + (result.total_ms / 1000).toFixed(2) + " s.";
    resultSection.scrollIntoView({behavior: "smooth", block: "start"});
  }

  function vaWord(value, low, middle, high) {
    return value <= -0.25 ? low : value >= 0.25 ? high : middle;
  }

  function faceCard(face, models, wholeImage, vaModel) {
    const card = document.createElement("article");
    card.className = "face-card";
    card.appendChild(Object.assign(document.createElement("h3"), {textContent: wholeImage ? "Whole image" : "Face " + face.number}));
    const list = document.createElement("ul");
    const traces = [];
    let axis = null;
    models.forEach((model, i) => {
      const out = face.models[model.key];
      if (!out) return;
      if (!axis) axis = out.classes.slice();
      out.classes.forEach((c) => { if (!axis.includes(c)) axis.push(c); });
      const item = document.createElement("li");
      const p = (name) => out.probs[out.classes.indexOf(name)];
      item.innerHTML = "";
      const strong = document.createElement("strong");
      strong.textContent = model.name + ": ";
      item.appendChild(strong);
      item.appendChild(document.createTextNode(out.top + " (" + pct(p(out.top)) + "), then " + out.second +
        " (" + pct(p(out.second)) + ") — " + out.ambiguity_word + " (ambiguity " + out.ambiguity.toFixed(2) + ")."));
      if (model.domain_warning) {
        const warn = document.createElement("span");
        warn.className = "warning";
        warn.textContent = " Note: " + model.domain_warning + ".";
        item.appendChild(warn);
      }
      list.appendChild(item);
      traces.push({type: "bar", name: model.name, x: out.classes, y: out.probs, marker: {color: COLORS[i % COLORS.length]},
        hovertemplate: "%{x}: %{y:.1%}<extra>" + model.name.replace(/[<>&]/g, "") + "</extra>"});
    });
    if (face.valence !== undefined) {
      const va = document.createElement("li");
      va.className = "face-va";
      if (vaModel) {
        const strong = document.createElement("strong");
        strong.textContent = vaModel.name + ": ";
        va.appendChild(strong);
      }
      va.appendChild(document.createTextNode("valence " + face.valence.toFixed(2) + " (" + vaWord(face.valence, "unpleasant", "neutral", "pleasant") +
        "), arousal " + face.arousal.toFixed(2) + " (" + vaWord(face.arousal, "calm", "moderate", "excited") + "), on a −1 to 1 scale" +
        (vaModel ? "; trained on " + vaModel.training_data : "") + "."));
      if (vaModel && vaModel.domain_warning) {
        const warn = document.createElement("span");
        warn.className = "warning";
        warn.textContent = " Note: " + vaModel.domain_warning + ".";
        va.appendChild(warn);
      }
      list.appendChild(va);
    }
    card.appendChild(list);
    if (traces.length) {
      const chart = document.createElement("div");
      chart.className = "chart";
      chart.setAttribute("role", "img");
      chart.setAttribute("aria-label", "emotion distribution of " + (wholeImage ? "the image" : "face " + face.number) +
        " for each model");
      card.appendChild(chart);
      requestAnimationFrame(() => Plotly.newPlot(chart, traces, {
        barmode: "group", margin: {l: 40, r: 36, t: 10, b: 60}, yaxis: {range: [0, 1], tickformat: ".0%"},  // r: room for the last tilted label
        xaxis: {categoryorder: "array", categoryarray: axis}, legend: {orientation: "h", y: -0.35},
        showlegend: traces.length > 1,
      }, {displayModeBar: false, responsive: true}));
    }
    return card;
  }

  input.addEventListener("change", () => { if (input.files[0]) send(input.files[0], false); input.value = ""; });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("is-over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("is-over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) send(file, false); else say("Drop an image file.", true);
  });
  document.addEventListener("paste", (e) => {
    const item = Array.from((e.clipboardData && e.clipboardData.items) || []).find((i) => i.type.startsWith("image/"));
    if (item) { e.preventDefault(); send(item.getAsFile(), false); }
  });
  document.getElementById("whole-image").addEventListener("click", () => send(lastBlob, true));

  function cameraUi(on) {
    video.hidden = !on; camShoot.hidden = !on; camStop.hidden = !on; camStart.hidden = on;
  }
  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    cameraUi(false);
  }
  camStart.addEventListener("click", async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser gives no camera access here (it needs HTTPS or localhost).", true);
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "user"}, audio: false});
      video.srcObject = stream;
      cameraUi(true);
      await video.play();
      camShoot.focus();
      say("Camera on. Take the picture when ready.");
    } catch (err) {
      say("The camera could not be opened (" + (err.name || "error") + ").", true);
      stopCamera();
    }
  });
  camShoot.addEventListener("click", () => {
    if (!video.videoWidth) { say("The camera is not ready yet.", true); return; }
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => { stopCamera(); blob.name = "camera.jpg"; send(blob, false); }, "image/jpeg", 0.92);
  });
  camStop.addEventListener("click", () => { stopCamera(); say(""); });
})();
