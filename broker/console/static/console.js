// Live refresh of the incident list: re-fetches the rows of the current filters every few seconds and
// swaps them in. The rows come from the server already escaped; nothing here builds HTML from data.
"use strict";
(function () {
  const rows = document.querySelector("tbody[data-refresh]");
  if (!rows) { return; }
  const stamp = document.getElementById("refreshed");
  const every = Number(rows.dataset.every || "5000");
  let stopped = false;
  async function refresh() {
    if (stopped || document.hidden) { return; }
    try {
      const answer = await fetch(rows.dataset.refresh, {
        credentials: "same-origin", redirect: "manual", cache: "no-store",
        headers: { "Accept": "text/html" },
      });
      if (answer.status !== 200) {
        stopped = true;
        if (stamp) { stamp.textContent = "live refresh stopped (signed out?): reload the page"; }
        return;
      }
      rows.innerHTML = await answer.text();
      if (stamp) { stamp.textContent = "refreshed " + new Date().toLocaleTimeString(); }
    } catch (error) {
      if (stamp) { stamp.textContent = "refresh failed, retrying"; }
    }
  }
  window.setInterval(refresh, every);
})();
