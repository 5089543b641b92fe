// The products page (loaded after the page's HTML): names, search and paging.
// `?size=N` sets the page size (default 20); `?page=N` the page.
const params = new URLSearchParams(window.location.search);
const size = Math.min(Math.max(Number(params.get("size")) || 20, 1), 200);
let pageNo = Math.max(Number(params.get("page")) || 1, 1);
let requested = 0;

function cell(text, className = "") {
  const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); td.className = className; return td;
}
async function list() {
  const search = document.getElementById("search").value;
  const mine = ++requested;  // answers to older searches are dropped
  try {
    const query = `search=${encodeURIComponent(search)}&limit=${size + 1}&offset=${(pageNo - 1) * size}`;
    const found = await TSM.api(`/api/training-sets?${query}`);
    if (mine !== requested) return;
    const rows = found.slice(0, size).map(p => {
      const tr = document.createElement("tr");
      const name = document.createElement("td"); const link = document.createElement("a");
      link.href = `/products/${p.id}`; link.textContent = p.name; link.title = `ID ${p.id}`; name.append(link);
      tr.append(name, cell(p.redshift_catalog), cell(p.release, "opt"), cell(p.format, "opt"), cell(p.status, `status-${p.status}`),
        cell(p.n_rows, "num"), cell((p.created_at || "").replace("T", " ").slice(0, 16), "opt"));
      return tr;
    });
    document.getElementById("rows").replaceChildren(...rows);
    document.getElementById("empty").classList.toggle("hidden", rows.length > 0);
    document.getElementById("prev").disabled = pageNo === 1;
    document.getElementById("next").disabled = found.length <= size;
    document.getElementById("page").textContent = `page ${pageNo}`;
  } catch (e) { if (e.status === 401) TSM.tokenBox(list); }
}
document.getElementById("search").addEventListener("input", () => { pageNo = 1; list(); });
document.getElementById("prev").addEventListener("click", () => { pageNo = Math.max(pageNo - 1, 1); list(); });
document.getElementById("next").addEventListener("click", () => { pageNo += 1; list(); });
list();
