// Shared by the pages: API calls with the optional token, the signed-in user, error display.
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
  // the token box: shown when a call needs a token (401) or the user asks to sign in
  tokenBox(onSaved) {
    const box = document.getElementById("token-box");
    if (!box) return;
    box.classList.remove("hidden");
    const input = document.getElementById("token");
    input.value = TSM.token();
    input.onchange = () => { localStorage.setItem("tsm-token", input.value.trim()); box.classList.add("hidden"); TSM.showWho(); onSaved(); };
  },
  // the header's "signed in as": GET /api/me answers a user's name, or admin / anonymous
  async showWho() {
    const name = document.getElementById("who-name");
    const signIn = document.getElementById("sign-in"), signOut = document.getElementById("sign-out");
    let text = "not signed in";
    try {
      const me = await TSM.api("/api/me");
      text = me.role === "user" ? `signed in as ${me.name}` : me.role === "admin" ? "signed in as admin" : "anonymous (open server)";
    } catch (e) { if (e.status !== 401) text = ""; }
    name.textContent = text;
    signOut.classList.toggle("hidden", !TSM.token());
    signIn.classList.toggle("hidden", Boolean(TSM.token()));
  },
};
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => { localStorage.removeItem("tsm-token"); window.location.reload(); });
  document.getElementById("sign-in").addEventListener("click", () => TSM.tokenBox(() => window.location.reload()));
  TSM.showWho();
});
