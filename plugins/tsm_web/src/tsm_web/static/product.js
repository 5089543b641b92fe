// The product page (loaded after the page's HTML).
const id = window.location.pathname.split("/").pop();
async function download(url, name) {
  const response = await fetch(url, { headers: TSM.headers() });
  const blob = await response.blob();
  const link = document.createElement("a"); link.href = URL.createObjectURL(blob); link.download = name; link.click();
}
let reportShown = false;
let pollDelay = 100;  // ms until the next look at a queued or running set
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
// The report in its own shadow root, so that its stylesheet (/report.css) cannot touch the
// page's styles, nor the page's the report's; the server serves the copy stored with the product.
async function showReport(url) {
  const status = document.getElementById("report-status");
  status.textContent = "loading the report...";
  try {
    const report = await TSM.api(url);
    const host = document.getElementById("report");
    const root = host.shadowRoot || host.attachShadow({ mode: "open" });
    const sheets = ["/report.css", "/static/report-embed.css"].map(href => {
      const link = document.createElement("link"); link.rel = "stylesheet"; link.href = href; return link;
    });
    const body = document.createElement("div");
    // made by the server from the training set's numbers (text escaped, figures as data: images, no script)
    body.innerHTML = report.html;
    root.replaceChildren(...sheets, body);
    status.classList.add("hidden");
  } catch (e) { status.textContent = e.message; }
}
async function poll() {
  try {
    const p = await TSM.api(`/api/training-sets/${id}`);
    document.getElementById("title").textContent = `${p.name} (ID ${p.id})`;
    const status = document.getElementById("status");
    status.textContent = p.status; status.className = `status-${p.status}`;
    document.getElementById("progress").value = p.progress;
    document.getElementById("rows").textContent = p.n_rows ?? "";
    document.getElementById("catalog").textContent = p.redshift_catalog ?? "";
    document.getElementById("release").textContent = p.release ?? "";
    document.getElementById("created").textContent = p.created_at;
    document.getElementById("config").textContent = JSON.stringify(p.config, null, 2);
    if (p.download_url) {
      const link = document.createElement("a");
      link.id = "download"; link.href = p.download_url; link.textContent = `Download ${p.file_name}`;
      link.addEventListener("click", (e) => { if (TSM.token()) { e.preventDefault(); download(p.download_url, p.file_name); } });
      const links = [link];
      if (p.unmatched_url) {  // output.unmatched: the redshifts the run lost, with the reason
        const lost = document.createElement("a");
        lost.id = "download-unmatched"; lost.href = p.unmatched_url; lost.textContent = `Download ${p.unmatched_file_name} (redshifts not matched)`;
        lost.addEventListener("click", (e) => { if (TSM.token()) { e.preventDefault(); download(p.unmatched_url, p.unmatched_file_name); } });
        links.push(document.createElement("br"), lost);
      }
      document.getElementById("file").replaceChildren(...links);
    }
    showFunnel(p.funnel);
    if (p.report_url && !reportShown) { reportShown = true; showReport(p.report_url); }
    if (p.error) { document.getElementById("error-row").classList.remove("hidden"); document.getElementById("error").textContent = p.error; }
    // done, failed, cancelled: stop; else ask again soon (a small set is done in under a second), then every second
    if (p.status === "queued" || p.status === "running") { setTimeout(poll, pollDelay); pollDelay = Math.min(1000, pollDelay * 2); }
  } catch (e) {
    if (e.status === 401) TSM.tokenBox(poll); else document.getElementById("status").textContent = e.message;
  }
}
poll();
