// The dashboard's script. Served from /static (CSP: script-src 'self'); no inline script.
// Every page works without it; it adds what only a browser can do: copy, download, modals,
// showing a password as it is typed, and the playground's live previews.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// Show or hide a password field's text.
function setupShowPassword() {
  for (const button of $$("[data-show-password]")) {
    const input = document.getElementById(button.dataset.showPassword);
    if (!input) continue;
    button.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", String(show));
      button.textContent = show ? "Hide" : "Show";
    });
  }
}

// A random password for a secure page: 4 groups of 5 letters and digits (about 100 bits),
// easy to read aloud, shown so the owner can copy it.
function setupGenerators() {
  const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
  for (const button of $$("[data-generate]")) {
    const input = document.getElementById(button.dataset.generate);
    if (!input) continue;
    button.addEventListener("click", () => {
      const bytes = new Uint8Array(20);
      crypto.getRandomValues(bytes);
      const chars = Array.from(bytes, (b) => alphabet[b % alphabet.length]);
      const groups = [0, 5, 10, 15].map((i) => chars.slice(i, i + 5).join(""));
      input.value = groups.join("-");
      input.type = "text";
      const toggle = $(`[data-show-password="${input.id}"]`);
      if (toggle) {
        toggle.setAttribute("aria-pressed", "true");
        toggle.textContent = "Hide";
      }
      input.focus();
      input.select();
    });
  }
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (an insecure context): copy through a selected text area.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

function textOf(element) {
  return "value" in element && element.tagName !== "BUTTON" ? element.value : element.textContent;
}

// Shows a short result on a button ("Copied"), then its own words again. A button named by
// aria-label says the same for the time being, so its name always contains what it shows.
function flash(button, text) {
  const before = button.dataset.label || button.textContent;
  const name = button.dataset.name ?? button.getAttribute("aria-label");
  button.dataset.label = before;
  button.textContent = text;
  if (name !== null) {
    button.dataset.name = name;
    button.setAttribute("aria-label", text);
  }
  setTimeout(() => {
    button.textContent = before;
    if (name !== null) button.setAttribute("aria-label", name);
  }, 2000);
}

function setupCopy() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const copied = await copyText(textOf(source).trim());
    flash(button, copied ? "Copied" : "Press Ctrl+C to copy");
    if (copied) button.dispatchEvent(new CustomEvent("brine:saved", { bubbles: true }));
  });
}

function setupDownload() {
  for (const button of $$("[data-download]")) {
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.download);
      if (!source) return;
      const blob = new Blob([source.textContent], { type: "text/plain;charset=utf-8" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = button.dataset.fileName || "brine.txt";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
      flash(button, "Downloaded");
      button.dispatchEvent(new CustomEvent("brine:saved", { bubbles: true }));
    });
  }
}

// The key modal: shown once, and it asks before it closes unless the key was copied or saved.
function setupKeyDialog() {
  const dialog = $("[data-key-dialog]");
  if (!dialog) return;
  let saved = false;
  const unsaved = $("[data-unsaved]", dialog);
  const closeRow = $("[data-close-row]", dialog);
  dialog.addEventListener("brine:saved", () => {
    saved = true;
    unsaved.hidden = true;
    closeRow.hidden = false;
  });
  const tryClose = () => {
    if (saved) {
      dialog.close();
      return;
    }
    unsaved.hidden = false;
    closeRow.hidden = true;
    $("[data-stay]", dialog).focus();
  };
  $("[data-close-key]", dialog).addEventListener("click", tryClose);
  $("[data-close-anyway]", dialog).addEventListener("click", () => dialog.close());
  $("[data-stay]", dialog).addEventListener("click", () => {
    unsaved.hidden = true;
    closeRow.hidden = false;
    $("[data-copy]", dialog).focus();
  });
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    tryClose();
  });
  // Rendered open (so it shows without script); made modal here.
  dialog.close();
  dialog.showModal();
  $("[data-copy]", dialog).focus();
}

// A page answered to a POST shows the record's own address, so that a reload does not post
// again and the history holds no form result.
function setupCanonicalUrl() {
  const canonical = $("[data-canonical]");
  if (canonical && location.pathname !== canonical.dataset.canonical) {
    // The fragment stays: a form may send the owner back to the part of the page it changed.
    history.replaceState(null, "", canonical.dataset.canonical + location.hash);
  }
}

// Parts of a form that apply only to some choices: data-when="access=private" or
// data-when="secure_page" (a ticked checkbox).
function setupConditional() {
  const parts = $$("[data-when]");
  if (parts.length === 0) return;
  const form = parts[0].closest("form");
  const holds = (condition) => {
    const [name, value] = condition.split("=");
    const inputs = $$(`[name="${name}"]`, form);
    if (value === undefined) return inputs.some((i) => i.checked);
    return inputs.some((i) => (i.type === "radio" || i.type === "checkbox" ? i.checked : true) && i.value === value);
  };
  const update = () => {
    for (const part of parts) part.hidden = !holds(part.dataset.when);
  };
  form.addEventListener("change", update);
  update();
}

function setupHeaderRows() {
  const rows = $("#header-rows");
  if (!rows) return;
  const add = $("[data-add-header]");
  add?.addEventListener("click", () => {
    const row = $("[data-header-row]", rows).cloneNode(true);
    for (const input of $$("input", row)) input.value = "";
    rows.append(row);
    $("input", row).focus();
  });
  rows.addEventListener("click", (event) => {
    const button = event.target.closest("[data-remove-row]");
    if (!button) return;
    const row = button.closest("[data-header-row]");
    if ($$("[data-header-row]", rows).length > 1) {
      row.remove();
      add?.focus();
    } else {
      for (const input of $$("input", row)) input.value = "";
    }
  });
}

// Forms that ask first (rotate, disable, turn off a page), in the page's own dialog.
function setupConfirm() {
  const dialog = $("#confirm-dialog");
  if (!dialog) return;
  let pending = null;
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.confirm || form.dataset.confirmed === "yes") return;
    event.preventDefault();
    pending = form;
    $("#confirm-message", dialog).textContent = form.dataset.confirm;
    $("#confirm-yes", dialog).textContent = form.querySelector("[type=submit]")?.textContent.trim() || "Confirm";
    dialog.showModal();
    $("#confirm-no", dialog).focus();
  });
  $("#confirm-yes", dialog).addEventListener("click", () => {
    dialog.close();
    if (!pending) return;
    pending.dataset.confirmed = "yes";
    pending.requestSubmit();
  });
  $("#confirm-no", dialog).addEventListener("click", () => {
    dialog.close();
    pending = null;
  });
}

// Tabs that follow the ARIA pattern: arrow keys move between them.
function setupTabs() {
  for (const list of $$("[role=tablist]")) {
    const tabs = $$("[role=tab]", list);
    const select = (tab) => {
      for (const t of tabs) {
        const on = t === tab;
        t.setAttribute("aria-selected", String(on));
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      }
    };
    for (const tab of tabs) {
      tab.addEventListener("click", () => select(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
        select(next);
        next.focus();
      });
    }
  }
}

// A GJSON path segment: characters with a meaning in paths are escaped.
function segment(key) {
  return String(key).replace(/[.*?|#@\\!=<>%]/g, (c) => `\\${c}`);
}

function setupPlayground() {
  const root = $("[data-playground]");
  if (!root) return;
  const token = root.dataset.formToken;
  const uuid = root.dataset.uuid;
  const readUrl = root.dataset.readUrl;
  const status = $("[data-pg-status]", root);
  const selectInput = $("#pg-select", root);
  let answer = null;
  let params = new URLSearchParams();

  const post = async (path, body) => {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Form-Token": token },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    return [response.status, await response.json().catch(() => null)];
  };

  const lines = (text, separator) => {
    const out = {};
    for (const line of text.split("\n")) {
      const at = line.indexOf(separator);
      if (at > 0) out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return out;
  };

  const callUrl = () => {
    const query = new URLSearchParams(params);
    const expr = selectInput.value.trim();
    if (expr) query.set("select", expr);
    const text = query.toString();
    const path = $("#pg-path", root).value.trim();
    return `${readUrl}${path}${text ? `?${text}` : ""}`;
  };

  const updateSnippets = () => {
    const url = callUrl();
    $("#pg-call-url", root).textContent = url;
    const method = $("#pg-method", root).value;
    $("#pg-fetch", root).textContent =
      `const res = await fetch(${JSON.stringify(url)}, { method: ${JSON.stringify(method)} });\n` +
      "const data = await res.json();";
  };

  const preview = async () => {
    updateSnippets();
    const out = $("[data-pg-selected]", root);
    const expr = selectInput.value.trim();
    if (answer === null || !expr) {
      out.textContent = "";
      return;
    }
    const [code, body] = await post(`/records/${uuid}/select`, { body: answer, select: expr });
    out.textContent =
      code === 200 ? JSON.stringify(body.result, null, 2) : body?.message || `Error ${code}`;
  };

  const tree = (value, path) => {
    const list = document.createElement("ul");
    list.className = "tree";
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries.slice(0, 200)) {
      const item = document.createElement("li");
      const here = path ? `${path}.${segment(key)}` : segment(key);
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = String(key);
      button.setAttribute("aria-label", `Select ${here}`);
      button.addEventListener("click", () => {
        selectInput.value = here;
        preview();
      });
      item.append(button);
      if (child !== null && typeof child === "object") {
        item.append(tree(child, here));
      } else {
        const span = document.createElement("span");
        span.className = "value";
        span.textContent = `: ${JSON.stringify(child)}`;
        item.append(span);
      }
      list.append(item);
    }
    return list;
  };

  $("[data-playground-form]", root).addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    params = new URLSearchParams(lines(form.params.value, "="));
    const call = {
      method: form.method.value,
      path: form.path.value.trim(),
      params: Object.fromEntries(params),
      headers: lines(form.headers.value, ":"),
    };
    const bodyText = form.body.value.trim();
    if (bodyText) {
      try {
        call.body = JSON.parse(bodyText);
      } catch {
        status.textContent = "The body is not valid JSON.";
        return;
      }
    }
    status.textContent = "Calling…";
    const [code, result] = await post(`/records/${uuid}/try`, call);
    if (code !== 200 || !result) {
      status.textContent = result?.message ? `${result.error}: ${result.message}` : `Error ${code}`;
      return;
    }
    status.textContent = `Upstream answered ${result.status} in ${result.duration_ms} ms.`;
    $("[data-pg-headers]", root).textContent = Object.entries(result.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n");
    $("[data-pg-body]", root).textContent =
      typeof result.body === "string" ? result.body : JSON.stringify(result.body, null, 2);
    const holder = $("[data-pg-tree]", root);
    holder.replaceChildren();
    answer = typeof result.body === "object" && result.body !== null ? result.body : null;
    if (answer !== null) holder.append(tree(answer, ""));
    else holder.textContent = "This answer is not JSON: select applies to JSON answers only.";
    preview();
  });
  selectInput.addEventListener("input", preview);
  updateSnippets();
}

document.addEventListener("DOMContentLoaded", () => {
  setupCanonicalUrl();
  setupShowPassword();
  setupGenerators();
  setupCopy();
  setupDownload();
  setupConditional();
  setupHeaderRows();
  setupConfirm();
  setupTabs();
  setupPlayground();
  setupKeyDialog();
});
