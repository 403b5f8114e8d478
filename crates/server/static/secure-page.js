// The Copy button on a revealed secure page. Served from /static (CSP: script-src 'self').
document.addEventListener("DOMContentLoaded", () => {
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
