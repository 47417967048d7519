// The run page: new log lines arrive through Server-Sent Events while the run runs, and earlier
// lines of a long log are fetched on demand. The server sends each line as escaped HTML.
"use strict";
(function () {
  const log = document.getElementById("log");
  if (!log) return;
  const lines = document.getElementById("lines");
  const run = log.dataset.run;

  // Stay at the end unless the reader scrolled up.
  const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  if (!location.hash) log.scrollTop = log.scrollHeight;

  function earlierLink() {
    const link = document.getElementById("earlier");
    if (!link) return;
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      const answer = await fetch(`/runs/${run}/lines?before=${link.dataset.before}`,
                                 { credentials: "same-origin" });
      if (!answer.ok) return;
      const height = log.scrollHeight;
      lines.insertAdjacentHTML("afterbegin", await answer.text());
      log.scrollTop += log.scrollHeight - height;
      const next = answer.headers.get("hoist-earlier");
      if (next) {
        link.dataset.before = next;
        link.href = `/runs/${run}?before=${next}`;
      } else {
        link.parentElement.remove();
      }
    });
  }
  earlierLink();

  if (!log.dataset.live) return;
  const source = new EventSource(`/runs/${run}/live?after=${log.dataset.last}`);
  source.onmessage = (event) => {
    const follow = atEnd();
    const none = document.getElementById("nolines");
    if (none) none.remove();
    lines.insertAdjacentHTML("beforeend", event.data);
    if (follow) log.scrollTop = log.scrollHeight;
  };
  source.addEventListener("end", () => {
    source.close();
    // The run finished: show its final status, jobs and steps.
    const keep = log.scrollTop;
    fetch(location.href, { credentials: "same-origin" })
      .then((a) => a.text())
      .then((html) => {
        const page = new DOMParser().parseFromString(html, "text/html");
        // The status, the buttons (no Cancel once it ended) and the steps; not the log.
        for (const selector of ["#run-status", ".meta", ".actions", ".jobs"]) {
          const fresh = page.querySelector(selector);
          const old = document.querySelector(selector);
          if (fresh && old) old.replaceWith(fresh);
        }
        log.scrollTop = keep;
      });
  });
})();
