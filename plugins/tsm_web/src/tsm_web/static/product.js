// The product page (loaded after the page's HTML).
const id = window.location.pathname.split("/").pop();
async function download(url, name) {
  const response = await fetch(url, { headers: TSM.headers() });
  const blob = await response.blob();
  const link = document.createElement("a"); link.href = URL.createObjectURL(blob); link.download = name; link.click();
}
let reportShown = false;
function showFunnel(steps) {
  const rows = (steps || []).filter(s => s.kind !== "info" || s.count).map(s => {
    const tr = document.createElement("tr");
    const what = s.kind === "removed" ? `-${s.count}` : s.kind === "not_counted" ? "not counted" : `${s.count}`;
    for (const text of [s.label, what, s.kind === "removed" ? `${s.remaining} ${s.unit} left` : s.unit, s.note || ""]) {
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }
    return tr;
  });
  document.querySelector("#funnel tbody").replaceChildren(...rows);
}
async function showReport(url) {
  try {
    const report = await TSM.api(url);
    // the report's HTML is made by the server from the training set's numbers (text escaped, figures as data: images)
    document.getElementById("report").innerHTML = report.html;
  } catch (e) { document.getElementById("report").textContent = e.message; }
}
async function poll() {
  try {
    const p = await TSM.api(`/api/training-sets/${id}`);
    document.getElementById("title").textContent = `${p.name} (ID ${p.id})`;
    const status = document.getElementById("status");
    status.textContent = p.status; status.className = `status-${p.status}`;
    document.getElementById("progress").value = p.progress;
    document.getElementById("rows").textContent = p.n_rows ?? "";
    document.getElementById("created").textContent = p.created_at;
    document.getElementById("config").textContent = JSON.stringify(p.config, null, 2);
    if (p.download_url) {
      const link = document.createElement("a");
      link.id = "download"; link.href = p.download_url; link.textContent = `Download ${p.file_name}`;
      link.addEventListener("click", (e) => { if (TSM.token()) { e.preventDefault(); download(p.download_url, p.file_name); } });
      document.getElementById("file").replaceChildren(link);
    }
    showFunnel(p.funnel);
    if (p.report_url && !reportShown) { reportShown = true; showReport(p.report_url); }
    if (p.error) { document.getElementById("error-row").classList.remove("hidden"); document.getElementById("error").textContent = p.error; }
    if (p.status === "queued" || p.status === "running") setTimeout(poll, 1000);  // done, failed, cancelled: stop
  } catch (e) {
    if (e.status === 401) TSM.tokenBox(poll); else document.getElementById("status").textContent = e.message;
  }
}
poll();
