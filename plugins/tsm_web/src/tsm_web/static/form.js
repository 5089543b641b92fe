// The form page (loaded after the page's HTML).
const $ = (id) => document.getElementById(id);
const option = (value, label, selected = false, disabled = false) => {
  const o = document.createElement("option"); o.value = value; o.textContent = label; o.selected = selected; o.disabled = disabled; return o;
};

let presets = {};
let releaseInfo = {};
// what backs a release on this server, in its label (short, so that the label shows whole)
const BACKING = { catalog: "", "synthetic sample": " (SYNTHETIC sample)", nothing: " (no catalog on this server)" };
function describeRelease() {
  const r = releaseInfo[$("release").value];
  if (!r) return;
  const note = r.backed_by === "synthetic sample" ? " This server runs it on the SYNTHETIC sample, not on real data."
    : r.backed_by === "nothing" ? " This server has no catalog for it: a run would fail." : "";
  $("release-hint").textContent = `${r.description}.${note}`.replace(/\.\./g, ".");
  $("release-hint").classList.toggle("warn", Boolean(note));
}
function loadPresets() {
  $("preset").replaceChildren(option("", "none", true), ...(presets[$("release").value] || []).map(p => option(p, p)));
}
const lines = (id) => $(id).value.split("\n").map(l => l.trim()).filter(Boolean);

async function loadFluxTypes() {
  const types = await TSM.api(`/api/releases/${encodeURIComponent($("release").value)}/flux-types`);
  $("flux_type").replaceChildren(...types.map(t => option(t.name, t.default ? `${t.name} (default)` : t.name, t.default)));
}

async function load() {
  try {
    const [releases, dereddeners, formats, catalogs, conventions] = await Promise.all([
      TSM.api("/api/releases"), TSM.api("/api/dereddeners"), TSM.api("/api/formats"), TSM.api("/api/redshift-catalogs"),
      TSM.api("/api/conventions")]);
    presets = Object.fromEntries(releases.map(r => [r.name, r.presets || []]));
    $("upload_convention").replaceChildren(option("", "convention: detect from the columns", true),
      ...conventions.map(c => option(c.name, `convention: ${c.name}`)));
    releaseInfo = Object.fromEntries(releases.map(r => [r.name, r]));
    $("release").replaceChildren(...releases.map(r => option(r.name, `${r.name}${BACKING[r.backed_by] ?? ""}`, r.name === "dp1")));
    describeRelease();
    $("dereddening").replaceChildren(...dereddeners.map(d => option(d.name,
      d.files_present ? d.name : `${d.name} (map files missing)`, d.name === "none", !d.files_present)));
    $("format").replaceChildren(...formats.map(f => option(f.name, f.name, f.name === "parquet")));
    $("redshift_catalog").replaceChildren(...catalogs.map(c => option(c.id, `${c.name}${c.owner ? ` [${c.owner}]` : ""} (${c.n_rows} rows)`)));
    if (!catalogs.length) { document.querySelector("input[value=upload]").click(); }
    loadPresets();
    await loadFluxTypes();
    $("err-token").textContent = "";
  } catch (e) {
    if (e.status === 401) { TSM.tokenBox(load); $("err-token").textContent = e.message; } else { $("err-general").textContent = e.message; }
  }
}

// The form's own words for pydantic's common refusals (`type` of an API error); `n` is the bound
const WORDS = {
  string_too_short: () => "must not be empty",
  missing: () => "is required",
  greater_than: (n) => `must be greater than ${n}`,
  greater_than_equal: (n) => `must be at least ${n}`,
  less_than: (n) => `must be less than ${n}`,
  less_than_equal: (n) => `must be at most ${n}`,
  int_parsing: () => "must be a whole number",
  int_from_float: () => "must be a whole number",
  float_parsing: () => "must be a number",
  float_type: () => "must be a number",
  int_type: () => "must be a whole number",
};
// The control of a config key: the one whose data-key is the longest prefix of it (list indexes dropped)
function controlOf(field) {
  const parts = (field || "").split(".").filter(p => !/^\d+$/.test(p));
  for (let n = parts.length; n > 0; n--) {
    const key = parts.slice(0, n).join(".");
    const found = document.querySelector(`[data-key="${CSS.escape(key)}"]`) || document.querySelector(`[data-key^="${CSS.escape(key)}."]`);
    if (found) return found;
  }
  return null;
}
function labelOf(control) {
  const field = control.closest(".field");
  const label = control.getAttribute("aria-label") || field.querySelector(":scope > label, :scope > .label")?.textContent || "";
  return label.trim();
}
function wording(err, control) {
  const word = WORDS[err.type];
  if (!word || !control) return err.message;
  const bound = (err.message.match(/(-?\d+(?:\.\d+)?)\s*$/) || [])[1];
  return `${labelOf(control)} ${word(bound)}.`;
}
// Every error of an answer at its own field, all at once (`prefix`: all of them at that field)
function showErrors(body, prefix = "") {
  for (const err of (body.errors || [{ field: body.field, message: body.message }])) {
    const control = controlOf(prefix || err.field);
    const box = control ? control.closest(".field").querySelector(".error") : $("err-general");
    if (control) control.setAttribute("aria-invalid", "true");
    const line = document.createElement("div");
    line.textContent = prefix ? err.message : wording(err, control);
    box.append(line);
  }
  const first = document.querySelector("[aria-invalid=true]");
  if (first) first.scrollIntoView({ block: "center" });
}

document.querySelectorAll("input[name=zsource]").forEach(radio => radio.addEventListener("change", () => {
  const upload = document.querySelector("input[name=zsource]:checked").value === "upload";
  document.querySelector(".zsource-upload").classList.toggle("hidden", !upload);
  $("redshift_catalog").classList.toggle("hidden", upload);
}));
$("release").addEventListener("change", () => { describeRelease(); loadPresets(); loadFluxTypes(); });

$("tsm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  document.querySelectorAll(".error").forEach(e => e.textContent = "");
  document.querySelectorAll("[aria-invalid]").forEach(e => e.removeAttribute("aria-invalid"));
  $("submit").disabled = true;
  try {
    let catalogId = $("redshift_catalog").value;
    if (document.querySelector("input[name=zsource]:checked").value === "upload") {
      const data = new FormData();
      const file = $("upload_file").files[0];
      if (!file) { showErrors({ errors: [{ message: "Choose a file to upload." }] }, "redshift_catalog"); return; }
      data.append("file", file);
      data.append("name", $("upload_name").value || file.name);
      const mapping = {};
      for (const key of ["id", "ra", "dec", "z", "z_err", "z_flag", "survey"]) {
        const value = $("map_" + key).value.trim(); if (value) mapping[key] = value;
      }
      data.append("columns", JSON.stringify(mapping));
      if ($("upload_convention").value) data.append("convention", $("upload_convention").value);
      try {
        const catalog = await TSM.api("/api/redshift-catalogs", { method: "POST", body: data });
        catalogId = catalog.id;
        // registered now: offer it in the list, so that a corrected form does not upload it again
        $("redshift_catalog").append(option(catalog.id, `${catalog.name} (${catalog.n_rows} rows)`, true));
        document.querySelector("input[value=registered]").click();
      } catch (e) { showErrors(e.body, "redshift_catalog"); return; }
    }
    const config = {
      name: $("name").value, description: $("description").value,
      redshift_catalog: catalogId ? { id: Number(catalogId) } : { name: "" },
      object_catalog: { release: $("release").value, flux_type: $("flux_type").value,
        dereddening: $("dereddening").value, convert_to_magnitudes: $("convert").checked },
      crossmatch: { radius_arcsec: Number($("radius").value), n_neighbors: Number($("neighbors").value) },
      unique_galaxies: $("unique").value,
      output: { format: $("format").value, layout: $("layout").value },
      filters: { object: lines("filters_object"), redshift: lines("filters_redshift") },
    };
    if ($("preset").value) config.filters.preset = $("preset").value;
    const extra = $("extra_columns").value.split(",").map(c => c.trim()).filter(Boolean);
    if (extra.length) config.object_catalog.extra_columns = extra;
    if ($("split").value) {
      config.split = { method: $("split").value, train_fraction: Number($("train_fraction").value) };
      if ($("split").value === "kfold") config.split.k = Number($("split_k").value);
    }
    const product = await TSM.api("/api/training-sets", {
      method: "POST", body: JSON.stringify(config), headers: { "Content-Type": "application/json" } });
    window.location = `/products/${product.id}`;
  } catch (e) {
    showErrors(e.body || { message: e.message });
  } finally {
    $("submit").disabled = false;
  }
});
load();
