// The products page (loaded after the page's HTML).
async function list() {
  const search = document.getElementById("search").value;
  try {
    const products = await TSM.api(`/api/training-sets?search=${encodeURIComponent(search)}`);
    document.getElementById("rows").innerHTML = products.map(p =>
      `<tr><td>${p.id}</td><td><a href="/products/${p.id}">${TSM.escape(p.name)}</a></td>` +
      `<td>${TSM.escape(p.release)}</td><td>${TSM.escape(p.redshift_catalog)}</td><td>${TSM.escape(p.format)}</td>` +
      `<td class="status-${p.status}">${TSM.escape(p.status)}</td><td>${p.n_rows ?? ""}</td><td>${TSM.escape(p.created_at)}</td></tr>`).join("");
  } catch (e) { if (e.status === 401) TSM.tokenBox(list); }
}
document.getElementById("search").addEventListener("input", list);
list();
