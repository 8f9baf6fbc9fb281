// Shared helpers of the MER pages: the API key (kept in this tab's sessionStorage and
// sent as X-API-Key), fetch with that key, {code, message} errors, the service config.
"use strict";

const MER = (() => {
  const KEY_STORAGE = "mer.apiKey";
  let configPromise = null;

  function getKey() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  }

  function setKey(key) {
    if (key) sessionStorage.setItem(KEY_STORAGE, key.trim());
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  /** GET /ui/config once: {auth_enabled, max_upload_bytes}. */
  function config() {
    if (!configPromise) {
      configPromise = fetch("/ui/config").then((r) => {
        if (!r.ok) throw new Error(`GET /ui/config answered ${r.status}`);
        return r.json();
      });
    }
    return configPromise;
  }

  /** fetch() with the API key header when one is set. */
  function apiFetch(url, options = {}) {
    const headers = new Headers(options.headers || {});
    const key = getKey();
    if (key) headers.set("X-API-Key", key);
    return fetch(url, { ...options, headers });
  }

  /** "code: message" of an error response (every API error is {code, message}). */
  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.code) return `${body.code}: ${body.message}`;
    } catch (_) {
      /* not JSON */
    }
    return `HTTP ${response.status} ${response.statusText}`;
  }

  function showError(text) {
    const box = document.getElementById("error");
    box.textContent = text;
    box.hidden = !text;
  }

  /** Wire the API key field: show it when auth is on, store what is typed. */
  async function setupKeyField(onChange) {
    const cfg = await config();
    const section = document.getElementById("key-section");
    const input = document.getElementById("api-key");
    section.hidden = !cfg.auth_enabled;
    input.value = getKey();
    input.addEventListener("change", () => {
      setKey(input.value);
      if (onChange) onChange();
    });
    return cfg;
  }

  /** Download an API resource (with the key header) under its own file name. */
  async function download(url, filename) {
    const r = await apiFetch(url);
    if (!r.ok) {
      showError(await errorText(r));
      return;
    }
    const blobUrl = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = blobUrl;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(blobUrl), 10000);
  }

  function formatBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i += 1;
    }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  const ACTIVE_STATES = new Set(["queued", "running"]);

  return { getKey, setKey, config, apiFetch, errorText, showError, setupKeyField,
           download, formatBytes, ACTIVE_STATES };
})();
