// Draw the console's time-series charts with the vendored uPlot. Data comes from
// <script type="application/json"> blocks rendered by the server (no inline code: CSP).
(function () {
  "use strict";
  var palette = ["#4c78c8", "#1f9d55", "#c8553d", "#8e5cc8", "#d49b00", "#2a9fb0"];

  function read(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function width(node) { return Math.max(320, node.clientWidth - 12); }

  function mark(node) { node.setAttribute("data-drawn", "yes"); }

  // Axis labels and hover values in UTC, as the server writes every time.
  function utc(ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }

  // One legend entry per line (uPlot's own would list every interval bound too).
  function legend(node, entries) {
    var list = document.createElement("ul");
    list.className = "legend";
    entries.forEach(function (entry) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.colour;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(entry.label));
      list.appendChild(item);
    });
    node.appendChild(list);
  }

  function traffic() {
    var node = document.getElementById("chart-traffic");
    var d = read("data-traffic");
    if (!node || !d) return;
    new uPlot({
      width: width(node), height: 260, tzDate: utc,
      series: [{}, { label: "decisions/min", stroke: palette[0], width: 2 },
                   { label: "feedback/min", stroke: palette[1], width: 2 }],
      axes: [{}, { label: "count per minute" }],
    }, [d.times, d.decisions, d.feedback], node);
    mark(node);
  }

  function learning(node) {
    var d = read(node.getAttribute("data-source"));
    if (!d) return;
    var data = [d.times], series = [{}], bands = [], entries = [];
    var all = d.series.map(function (s) { return { s: s, dash: null }; })
      .concat(d.baselines.map(function (s) { return { s: s, dash: [6, 4] }; }));
    all.forEach(function (item, i) {
      var colour = palette[i % palette.length];
      var base = data.length;
      data.push(item.s.mean, item.s.high, item.s.low);
      series.push({ label: item.s.name, stroke: colour, width: 2, dash: item.dash, spanGaps: true,
                    points: { show: true } });
      series.push({ label: item.s.name + " high", stroke: "transparent", spanGaps: true, points: { show: false } });
      series.push({ label: item.s.name + " low", stroke: "transparent", spanGaps: true, points: { show: false } });
      bands.push({ series: [base + 1, base + 2], fill: colour + "22" });
      entries.push({ label: item.s.name + (item.dash ? " (estimated)" : " (served)"), colour: colour });
    });
    new uPlot({
      width: width(node), height: 340, series: series, bands: bands, tzDate: utc,
      legend: { show: false }, axes: [{}, { label: d.unit }],
    }, data, node);
    legend(node, entries);
    mark(node);
  }

  traffic();
  Array.prototype.forEach.call(document.querySelectorAll("[data-source]"), learning);
})();
