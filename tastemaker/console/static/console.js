// Draws the console's charts: each <script type="application/json" class="chart-figure"> block holds a Plotly
// figure built by the server (console/charts.py); plotly.js (served from the installed plotly package) draws it
// in the element before the figure's caption. Loaded with defer, after plotly.js.
// From the keyboard each plot is a tab stop: the arrow keys move between its bars (Home and End: the first and
// last), plotly shows the bar's hover label, and the chart's aria-live region says the same text.
// A box with data-live="URL" (the event tracker's live chart) fetches its chart again from URL every 5 seconds
// and redraws it in place (Plotly.react), with its name, caption and table of figures.
(function () {
  "use strict";
  function bars(figure) {  // in reading order: by position on the x axis, then by trace (grouped bars)
    const points = [];
    figure.data.forEach(function (trace, curve) {
      (trace.y || []).forEach(function (y, index) {
        if (y !== null && y !== undefined) points.push({curve: curve, index: index, text: (trace.text || [])[index] || String(y)});
      });
    });
    return points.sort(function (a, b) { return a.index - b.index || a.curve - b.curve; });
  }
  function keys(plot) {
    const live = plot.parentElement.querySelector(".chart-live");
    let at = -1;
    plot.addEventListener("keydown", function (event) {
      const points = plot.chartBars;
      const moves = {ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
                     Home: 0, End: points.length - 1};
      if (!(event.key in moves)) return;
      event.preventDefault();
      if (!points.length) { live.textContent = "No data yet."; return; }
      at = Math.min(points.length - 1, Math.max(0, moves[event.key]));
      const point = points[at];
      Plotly.Fx.hover(plot, [{curveNumber: point.curve, pointNumber: point.index}]);
      live.textContent = point.text + " (" + (at + 1) + " of " + points.length + ")";
    });
    plot.addEventListener("blur", function () { Plotly.Fx.unhover(plot); });
  }
  function refresh(box) {
    setInterval(async function () {
      if (document.hidden) return;
      const reply = await fetch(box.dataset.live, {credentials: "same-origin"});
      if (!reply.ok) return;
      const fresh = new DOMParser().parseFromString(await reply.text(), "text/html").querySelector("figure.chart-box");
      const shown = box.querySelector("figure.chart-box");
      if (!fresh || !shown) return;
      const figure = JSON.parse(fresh.querySelector("script.chart-figure").textContent);
      const plot = shown.querySelector(".plot");
      plot.chartBars = bars(figure);
      Plotly.react(plot, figure.data, figure.layout, {displayModeBar: false, responsive: true});
      plot.setAttribute("aria-label", fresh.querySelector(".plot").getAttribute("aria-label"));
      shown.querySelector("figcaption").replaceWith(fresh.querySelector("figcaption"));
      shown.querySelectorAll(":scope > div.visually-hidden").forEach(function (old) { old.remove(); });
      fresh.querySelectorAll(":scope > div.visually-hidden").forEach(function (table) { shown.append(table); });
    }, 5000);
  }
  function draw() {
    document.querySelectorAll("script.chart-figure").forEach(function (block) {
      const figure = JSON.parse(block.textContent);
      const plot = block.parentElement.querySelector(".plot");
      plot.chartBars = bars(figure);
      Plotly.newPlot(plot, figure.data, figure.layout, {displayModeBar: false, responsive: true});
      keys(plot);
    });
    document.querySelectorAll("[data-live]").forEach(refresh);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
