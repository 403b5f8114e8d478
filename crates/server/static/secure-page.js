// The secure page's buttons: Show password on the form, Copy on a revealed value. Served from
// /static (CSP: script-src 'self').
document.addEventListener("DOMContentLoaded", () => {
  // A toggle button: its label stays "Show password" and aria-pressed says whether it is on.
  const toggle = document.getElementById("show-password");
  const password = document.getElementById("password");
  if (toggle && password) {
    toggle.addEventListener("click", () => {
      const shown = password.type === "password";
      password.type = shown ? "text" : "password";
      toggle.setAttribute("aria-pressed", String(shown));
      password.focus();
    });
  }

  const button = document.getElementById("copy");
  if (!button) return;
  const secret = document.getElementById(button.dataset.target);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(secret.textContent);
      button.textContent = "Copied";
    } catch {
      // No clipboard permission (or an insecure context): select the text instead.
      const range = document.createRange();
      range.selectNodeContents(secret);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = document.execCommand("copy") ? "Copied" : "Press Ctrl+C to copy";
    }
  });
});
