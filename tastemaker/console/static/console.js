// Draws the console's charts: each <script type="application/json" class="chart-figure"> block holds a Plotly
// figure built by the server (console/charts.py); plotly.js (served from the installed plotly package) draws it
// in the element before the figure's caption. Loaded with defer, after plotly.js.
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("script.chart-figure").forEach(function (block) {
      const figure = JSON.parse(block.textContent);
      const plot = block.parentElement.querySelector(".plot");
      Plotly.newPlot(plot, figure.data, figure.layout, {displayModeBar: false, responsive: true});
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
