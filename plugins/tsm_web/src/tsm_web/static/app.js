// Shared by the pages: API calls with the optional token, and error display.
const TSM = {
  token() { return localStorage.getItem("tsm-token") || ""; },
  headers(extra = {}) {
    const t = TSM.token();
    return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
  },
  async api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: TSM.headers(options.headers || {}) });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const err = new Error((body && body.message) || response.statusText);
      err.status = response.status; err.body = body || {};
      throw err;
    }
    return body;
  },
  escape(text) {
    const div = document.createElement("div"); div.textContent = text == null ? "" : String(text); return div.innerHTML;
  },
  tokenBox(onSaved) {
    const box = document.getElementById("token-box");
    if (!box) return;
    box.classList.remove("hidden");
    const input = document.getElementById("token");
    input.value = TSM.token();
    input.addEventListener("change", () => { localStorage.setItem("tsm-token", input.value.trim()); onSaved(); });
  },
};
