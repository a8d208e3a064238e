// The console's only script: copy buttons, the sign-in method switch, and policy validation as you type.
// Everything works without it; it adds convenience only.
"use strict";

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const text = button.getAttribute("data-copy") || "";
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
  } else {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }
});

function showSignInMethod() {
  const chosen = document.querySelector("input[name=method]:checked");
  if (!chosen) return;
  const byKey = chosen.value === "access_key";
  for (const [selector, shown] of [[".by-password", !byKey], [".by-key", byKey]]) {
    const part = document.querySelector(selector);
    if (part) part.hidden = !shown;
  }
}
document.addEventListener("change", (event) => {
  if (event.target.matches("input[name=method]")) showSignInMethod();
});
document.addEventListener("DOMContentLoaded", showSignInMethod);

function validator(area) {
  const status = document.getElementById(area.getAttribute("aria-describedby"));
  const form = area.closest("form");
  let timer = null;
  let asked = 0;
  const check = () => {
    const text = area.value;
    if (!text.trim()) { status.textContent = ""; status.className = "validation"; return; }
    try { JSON.parse(text); } catch (error) {
      status.textContent = "Not valid JSON: " + error.message;
      status.className = "validation invalid";
      return;
    }
    const body = new URLSearchParams();
    body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.set("policy", text);
    body.set("kind", area.getAttribute("data-kind") || "resource");
    const mine = ++asked;
    fetch(area.getAttribute("data-validate"), { method: "POST", body, credentials: "same-origin" })
      .then((response) => response.json())
      .then((answer) => {
        if (mine !== asked) return;
        status.textContent = answer.message;
        status.className = "validation " + (answer.valid ? "valid" : "invalid");
      })
      .catch(() => {});
  };
  area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  check();
}
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("textarea[data-validate]").forEach(validator);
});
