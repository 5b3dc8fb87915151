// Comparison page charts: one grouped bar chart per image (human share with its 95% interval beside each
// model's probability, as in the ULDL paper's Figure 3) and the confusion-matrix heatmap. Plotly is served
// by the site itself (no CDN).
(function () {
  "use strict";
  if (typeof Plotly === "undefined") { return; }
  var palette = ["#2457c5", "#d9822b", "#2f9e44", "#ae3ec9", "#e03131"];
  var config = {displayModeBar: false, responsive: true, staticPlot: false};
  var dataNode = document.getElementById("chart-data");
  var charts = dataNode ? JSON.parse(dataNode.textContent) : {};
  document.querySelectorAll("[data-chart]").forEach(function (node) {
    var c = charts[node.dataset.chart];
    if (!c) { return; }
    var human = c.human.map(function (v) { return v === null ? 0 : v; });
    var traces = [{
      type: "bar", name: "Humans (n=" + c.n + ")", x: c.labels, y: human, marker: {color: "#5d6878"},
      error_y: {type: "data", symmetric: false, visible: c.n > 0, thickness: 1, width: 2,
        array: c.high.map(function (h, i) { return Math.max(h - human[i], 0); }),
        arrayminus: c.low.map(function (l, i) { return Math.max(human[i] - l, 0); })}
    }];
    c.models.forEach(function (m, i) {
      traces.push({type: "bar", name: m.name, x: c.labels, y: m.probs, marker: {color: palette[i % palette.length]}});
    });
    Plotly.newPlot(node, traces, {
      barmode: "group", bargap: 0.25, margin: {l: 36, r: 6, t: 24, b: 52}, yaxis: {range: [0, 1], tickformat: ".0%"},
      xaxis: {tickangle: -35}, legend: {orientation: "h", x: 0, y: 1.14, font: {size: 10}}, font: {size: 10},
      showlegend: true
    }, config);
  });
  var confusionNode = document.getElementById("confusion-data");
  if (confusionNode) {
    var cm = JSON.parse(confusionNode.textContent);
    Plotly.newPlot("confusion", [{type: "heatmap", z: cm.matrix, x: cm.labels, y: cm.labels, colorscale: [[0, "#f5f7fb"], [1, "#2457c5"]],
      hovertemplate: "human %{y} → model %{x}: %{z}<extra></extra>"}], {
      title: {text: "Human majority × " + cm.model + " top-1", font: {size: 13}},
      // automargin makes room for the longest label ("Happiness"; Plotly turns them upright on phones);
      // standoff keeps each axis title clear of its tick labels instead of at a fixed distance they run into.
      margin: {l: 10, r: 10, t: 35, b: 10},
      xaxis: {title: {text: "model", standoff: 12}, automargin: true},
      yaxis: {title: {text: "humans", standoff: 12}, automargin: true, autorange: "reversed"}
    }, config);
  }
})();
