"use strict";
// Admin view: every rater's progress, refreshed every 5 s.
const token = decodeURIComponent(location.hash.slice(1));

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }

async function refresh() {
  const r = await fetch("/api/admin/progress", {headers: {"Authorization": "Bearer " + token}, cache: "no-store"});
  const err = document.getElementById("error");
  if (!r.ok) { err.textContent = r.status === 401 ? "This link is not valid." : r.statusText; err.hidden = false; return; }
  err.hidden = true;
  const data = await r.json();
  document.getElementById("title").textContent = `${data.title}: progress`;
  const done = data.raters.filter(x => x.done === x.trials).length;
  document.getElementById("where").textContent = `${done} of ${data.raters.length} raters finished`;
  const rows = data.raters.map(x => {
    const tr = document.createElement("tr");
    tr.id = `rater-${x.rater}`;
    const when = x.updated_at ? new Date(x.updated_at * 1000).toLocaleString() : "–";
    tr.append(cell(x.rater), cell(x.training_done ? "done" : "–"), cell(`${x.done} / ${x.trials}`), cell(when),
              cell(location.origin + x.link, "link"));
    return tr;
  });
  document.querySelector("#progress tbody").replaceChildren(...rows);
}

refresh();
setInterval(refresh, 5000);

// a different link pasted into the same tab: start over with its token
window.addEventListener("hashchange", () => location.reload());
