// Upload page: drop or choose a video, POST /v1/analyze, poll GET /v1/jobs/{id} and
// show its progress, then link to the results page.
"use strict";

(() => {
  const POLL_MS = 700;
  const $ = (id) => document.getElementById(id);
  let busy = false;

  function showJob(filename) {
    $("job-section").hidden = false;
    $("job-file").textContent = filename;
    $("job-state").textContent = "uploading";
    $("job-state").dataset.state = "uploading";
    $("job-progress").removeAttribute("value"); // indeterminate while the bytes travel
    $("job-stage").textContent = "";
    $("open-result").hidden = true;
  }

  function showStatus(job) {
    $("job-state").textContent = job.state;
    $("job-state").dataset.state = job.state;
    $("job-progress").value = job.progress.percent;
    $("job-stage").textContent =
      `${job.progress.stage}: ${job.progress.percent.toFixed(0)} %`;
  }

  async function poll(jobId) {
    const r = await MER.apiFetch(`/v1/jobs/${jobId}`);
    if (!r.ok) {
      MER.showError(await MER.errorText(r));
      return false;
    }
    const job = await r.json();
    showStatus(job);
    if (MER.ACTIVE_STATES.has(job.state)) return true;
    if (job.state === "succeeded") {
      const link = $("open-result");
      link.href = `/ui/jobs/${job.job_id}`;
      link.hidden = false;
    } else if (job.error) {
      MER.showError(`The analysis ${job.state}: ${job.error.code}: ${job.error.message}`);
    }
    return false;
  }

  async function submit(file) {
    if (busy || !file) return;
    const cfg = await MER.config();
    MER.showError("");
    if (cfg.auth_enabled && !MER.getKey()) {
      MER.showError("Enter your API key first.");
      $("api-key").focus();
      return;
    }
    if (file.size > cfg.max_upload_bytes) {
      MER.showError(`${file.name} is ${MER.formatBytes(file.size)}; the limit is ` +
                    `${MER.formatBytes(cfg.max_upload_bytes)}.`);
      return;
    }
    busy = true;
    showJob(file.name);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const start = $("neutral-start").value.trim();
      const end = $("neutral-end").value.trim();
      if (start || end) {  // both or neither: the service says which is missing
        form.append("neutral_start_s", start);
        form.append("neutral_end_s", end);
      }
      const r = await MER.apiFetch("/v1/analyze", { method: "POST", body: form });
      if (!r.ok) {
        $("job-state").textContent = "rejected";
        $("job-state").dataset.state = "failed";
        $("job-progress").value = 0;
        MER.showError(await MER.errorText(r));
        return;
      }
      const accepted = await r.json();
      $("job-file").textContent = `${file.name} (job ${accepted.job_id})`;
      while (await poll(accepted.job_id)) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (err) {
      MER.showError(`Network error: ${err.message}`);
    } finally {
      busy = false;
      $("file").value = "";
    }
  }

  async function init() {
    const cfg = await MER.setupKeyField();
    $("limit-hint").textContent = `(up to ${MER.formatBytes(cfg.max_upload_bytes)})`;
    const zone = $("drop-zone");
    $("file").addEventListener("change", (e) => submit(e.target.files[0]));
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        $("file").click();
      }
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => {
        e.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, () => zone.classList.remove("over"));
    }
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      submit(e.dataTransfer.files[0]);
    });
    // a file dropped next to the zone must not navigate away from the page
    window.addEventListener("dragover", (e) => e.preventDefault());
    window.addEventListener("drop", (e) => e.preventDefault());
  }

  init().catch((err) => MER.showError(`Could not start the page: ${err.message}`));
})();
