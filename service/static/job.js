// Results page of one job: the uploaded video with a playhead synced to uPlot plots of
// the apex score and the AU scores over time, the spotted intervals as labelled bands
// (click one to seek), the apex frame, and links to the JSON and the CSV.
"use strict";

(() => {
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  const jobId = location.pathname.split("/").filter(Boolean).pop();
  const EMOTION_COLORS = { positive: "#2e9d5b", negative: "#d0473c", surprise: "#d49a1a" };
  const NO_EMOTION_COLOR = "#7a7f8c";
  const AU_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39",
  ];
  const plots = [];
  let result = null;
  let loaded = false;

  const video = () => $("video");
  const emotionOf = (iv) => (iv.emotion ? iv.emotion.label : "no emotion");
  const colorOf = (iv) => (iv.emotion && EMOTION_COLORS[iv.emotion.label]) || NO_EMOTION_COLOR;

  /** Seek the video to time t (seconds), a quarter frame in so the frame shown is t's. */
  function seekTo(t) {
    const v = video();
    const fps = result ? result.video.fps : 30;
    v.pause();
    v.currentTime = Math.max(0, t + 0.25 / fps);
  }

  /** Index of the last frame whose timestamp is <= t. */
  function frameAt(t) {
    const frames = result.frames;
    let lo = 0;
    let hi = frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (frames[mid].timestamp_s <= t) lo = mid;
      else hi = mid - 1;
    }
    return frames[lo];
  }

  // ---- plots -----------------------------------------------------------------------
  /** uPlot plugin: interval bands (under the series), labels, apex and playhead lines. */
  function overlayPlugin(withLabels) {
    const px = uPlot.pxRatio;
    function xPos(u, t) {
      return u.valToPos(t, "x", true);
    }
    function bands(u) {
      const { ctx, bbox } = u;
      ctx.save();
      for (const iv of result.intervals) {
        const x0 = xPos(u, iv.onset_s);
        const x1 = xPos(u, iv.offset_s);
        ctx.fillStyle = colorOf(iv) + "2e"; // ~18 % alpha
        ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 2 * px), bbox.height);
      }
      ctx.restore();
    }
    function lines(u) {
      const { ctx, bbox } = u;
      ctx.save();
      if (withLabels) {
        ctx.font = `${12 * px}px system-ui, sans-serif`;
        ctx.textBaseline = "top";
        ctx.textAlign = "left";
        for (const iv of result.intervals) {
          const x0 = xPos(u, iv.onset_s);
          const text = [`${emotionOf(iv)} · ${iv.kind}`, iv.top_aus.slice(0, 3).join(" ")];
          const lines = text.filter(Boolean);
          const w = Math.max(...lines.map((t) => ctx.measureText(t).width)) + 8 * px;
          ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
          ctx.fillRect(x0 + 2 * px, bbox.top + 2 * px, w, (lines.length * 16 + 4) * px);
          ctx.fillStyle = colorOf(iv);
          lines.forEach((t, i) => ctx.fillText(t, x0 + 6 * px, bbox.top + (4 + 16 * i) * px));
        }
      }
      if (result.apex) {
        const xa = xPos(u, result.apex.timestamp_s);
        ctx.strokeStyle = "#444";
        ctx.setLineDash([4 * px, 4 * px]);
        ctx.lineWidth = px;
        ctx.beginPath();
        ctx.moveTo(xa, bbox.top);
        ctx.lineTo(xa, bbox.top + bbox.height);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      const xp = xPos(u, video().currentTime || 0);
      ctx.strokeStyle = "#c01d7a";
      ctx.lineWidth = 2 * px;
      ctx.beginPath();
      ctx.moveTo(xp, bbox.top);
      ctx.lineTo(xp, bbox.top + bbox.height);
      ctx.stroke();
      ctx.restore();
    }
    return { hooks: { drawClear: [bands], draw: [lines] } };
  }

  function plotWidth() {
    return Math.max(320, $("apex-plot").clientWidth);
  }

  function makePlot(target, series, data, height, withLabels, yLabel) {
    const opts = {
      width: plotWidth(),
      height,
      scales: { x: { time: false }, y: { range: [0, 1] } },
      axes: [{ label: "time (s)" }, { label: yLabel }],
      cursor: { y: false, sync: { key: "mer" }, drag: { x: false, y: false } },
      series: [{ label: "t (s)", value: (u, v) => (v == null ? "" : v.toFixed(3)) }, ...series],
      plugins: [overlayPlugin(withLabels)],
    };
    const u = new uPlot(opts, data, target);
    u.over.addEventListener("click", () => {
      if (u.cursor.left == null || u.cursor.left < 0) return;
      seekTo(u.posToVal(u.cursor.left, "x"));
    });
    plots.push(u);
    return u;
  }

  function drawPlots() {
    const frames = result.frames;
    const xs = frames.map((f) => f.timestamp_s);
    const fmt = (u, v) => (v == null ? "" : v.toFixed(2));
    makePlot(
      $("apex-plot"),
      [{ label: "apex score", stroke: "#1a5fb4", width: 2, fill: "#1a5fb414", value: fmt }],
      [xs, frames.map((f) => f.apex_score)],
      220,
      true,
      "apex score",
    );
    const auNames = Object.keys(frames[0].au).sort();
    const active = new Set(result.intervals.flatMap((iv) => iv.top_aus));
    const auSeries = auNames.map((name, i) => ({
      label: name,
      stroke: AU_COLORS[i % AU_COLORS.length],
      width: 1.5,
      // shown at first: the AUs of the intervals, or those that reach 0.5 somewhere
      show: active.size ? active.has(name) : frames.some((f) => f.au[name] >= 0.5),
      value: fmt,
    }));
    makePlot(
      $("au-plot"),
      auSeries,
      [xs, ...auNames.map((name) => frames.map((f) => f.au[name]))],
      260,
      false,
      "AU score",
    );
    window.addEventListener("resize", () => {
      for (const u of plots) u.setSize({ width: plotWidth(), height: u.height });
    });
  }

  // ---- video, playhead, apex frame ---------------------------------------------------
  function onTime() {
    const t = video().currentTime || 0;
    for (const u of plots) u.redraw(false, false);
    for (const li of document.querySelectorAll("#intervals .interval")) {
      li.classList.toggle("active", t >= +li.dataset.onset && t <= +li.dataset.offset);
    }
    if (result) {
      const f = frameAt(t);
      $("video-status").textContent =
        `frame ${f.frame} · ${t.toFixed(3)} s · apex score ${f.apex_score.toFixed(2)}`;
    }
  }

  function followPlayback() {
    const step = () => {
      onTime();
      if (!video().paused && !video().ended) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  }

  async function loadVideo(cfg) {
    const url = `/v1/jobs/${jobId}/video`;
    if (!cfg.auth_enabled) return url; // the browser streams it with range requests
    // <video> cannot send the X-API-Key header: download with it, play the blob
    $("video-status").textContent = "downloading the video…";
    const r = await MER.apiFetch(url);
    if (!r.ok) {
      $("video-status").textContent = `video unavailable: ${await MER.errorText(r)}`;
      return null;
    }
    return URL.createObjectURL(await r.blob());
  }

  /** The overall emotion's class probabilities as bars (or why there is none). */
  function showEmotion() {
    const box = $("emotion");
    const emotion = result.emotion;
    if (!emotion) {
      box.textContent = result.emotion_reason ? `No emotion: ${result.emotion_reason}` : "";
      return;
    }
    const rows = Object.entries(emotion.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [label, p] of rows) {
      const row = document.createElement("div");
      row.className = "prob";
      const name = document.createElement("span");
      name.textContent = label;
      const bar = document.createElement("meter");
      bar.min = 0;
      bar.max = 1;
      bar.value = p;
      const value = document.createElement("span");
      value.textContent = `${(p * 100).toFixed(1)} %`;
      row.append(name, bar, value);
      box.append(row);
    }
    const model = document.createElement("div");
    model.className = "hint";
    model.textContent = emotion.model;
    box.append(model);
  }

  function drawApexFrame(src) {
    const apex = result.apex;
    if (!apex) {
      $("apex-caption").textContent = "No apex (no movement found).";
      $("apex-seek").hidden = true;
      return;
    }
    $("apex-caption").textContent =
      `frame ${apex.frame} · ${apex.timestamp_s.toFixed(3)} s · score ${apex.score.toFixed(2)}`;
    $("apex-seek").addEventListener("click", () => seekTo(apex.timestamp_s));
    if (!src) return;
    const probe = document.createElement("video");
    probe.muted = true;
    probe.preload = "auto";
    probe.addEventListener(
      "loadeddata",
      () => {
        probe.currentTime = apex.timestamp_s + 0.25 / result.video.fps;
      },
      { once: true },
    );
    probe.addEventListener(
      "seeked",
      () => {
        const canvas = $("apex-thumb");
        canvas.width = probe.videoWidth;
        canvas.height = probe.videoHeight;
        canvas.getContext("2d").drawImage(probe, 0, 0);
        canvas.dataset.drawn = "true";
      },
      { once: true },
    );
    probe.src = src;
  }

  // ---- intervals, summary, links -----------------------------------------------------
  function listIntervals() {
    const list = $("intervals");
    list.replaceChildren();
    $("no-intervals").hidden = result.intervals.length > 0;
    result.intervals.forEach((iv) => {
      const li = document.createElement("li");
      li.className = "interval";
      li.tabIndex = 0;
      li.dataset.onset = iv.onset_s;
      li.dataset.offset = iv.offset_s;
      li.style.borderLeftColor = colorOf(iv);
      const label = document.createElement("strong");
      label.className = "label";
      const prob = iv.emotion ? ` ${(iv.emotion.score * 100).toFixed(0)} %` : "";
      label.textContent = `${emotionOf(iv)}${prob} · ${iv.kind}`;
      const aus = document.createElement("span");
      aus.className = "aus";
      aus.textContent = iv.top_aus.length ? iv.top_aus.join(" ") : "no AU ≥ 0.5";
      const times = document.createElement("span");
      times.className = "hint";
      times.textContent =
        `${iv.onset_s.toFixed(2)}–${iv.offset_s.toFixed(2)} s (frames ${iv.onset}–` +
        `${iv.offset}), apex ${iv.apex_s.toFixed(2)} s, score ${iv.score.toFixed(2)}`;
      li.append(label, aus, times);
      const seek = () => seekTo(iv.onset_s);
      li.addEventListener("click", seek);
      li.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          seek();
        }
      });
      list.append(li);
    });
  }

  function summarize(job) {
    const v = result.video;
    const parts = [
      `${v.width}×${v.height}`,
      `${v.fps.toFixed(2)} fps`,
      `${v.frame_count} frames`,
      `${v.duration_s.toFixed(2)} s`,
      `${result.intervals.length} interval(s)`,
    ];
    if (result.emotion) {
      parts.push(`overall: ${result.emotion.label} ${(result.emotion.score * 100).toFixed(0)} %`);
    } else if (result.emotion_reason) {
      parts.push(`no overall emotion (${result.emotion_reason})`);
    }
    parts.push(`AUs: ${result.au_method}`);
    const n = result.neutral;
    if (n && n.source === "reference") {
      parts.push(`neutral: reference ${n.start_s.toFixed(2)}–${n.end_s.toFixed(2)} s ` +
                 `(${n.frames} frames)`);
    } else if (n) {
      parts.push("neutral: estimated");
    }
    let text = parts.join(" · ");
    if (result.warnings.length) text += ` · warnings: ${result.warnings.join("; ")}`;
    $("summary").textContent = text;
    $("title").textContent = job.filename;
    document.title = `MER: ${job.filename}`;
  }

  function setupLinks(cfg) {
    const links = [
      [$("link-json"), `/v1/jobs/${jobId}`, `${jobId}.json`],
      [$("link-csv"), `/v1/jobs/${jobId}/result.csv`, `${jobId}.csv`],
    ];
    for (const [a, url, name] of links) {
      a.href = url;
      a.download = name;
      if (cfg.auth_enabled) {
        a.addEventListener("click", (e) => {
          e.preventDefault();
          MER.download(url, name);
        });
      }
    }
    $("links").hidden = false;
  }

  async function render(job, cfg) {
    result = job.result;
    loaded = true;
    summarize(job);
    showEmotion();
    setupLinks(cfg);
    $("result").hidden = false;
    listIntervals();
    drawPlots();
    const v = video();
    for (const type of ["timeupdate", "seeked", "loadedmetadata"]) {
      v.addEventListener(type, onTime);
    }
    v.addEventListener("play", followPlayback);
    const src = await loadVideo(cfg);
    if (src) {
      v.src = src;
      drawApexFrame(src);
    } else {
      drawApexFrame(null);
    }
    onTime();
  }

  async function load() {
    if (loaded) return;
    const cfg = await MER.config();
    MER.showError("");
    if (cfg.auth_enabled && !MER.getKey()) {
      MER.showError("This service needs an API key: enter it above.");
      return;
    }
    const r = await MER.apiFetch(`/v1/jobs/${jobId}`);
    if (!r.ok) {
      MER.showError(await MER.errorText(r));
      if (r.status === 401 || r.status === 403) $("key-section").hidden = false;
      return;
    }
    const job = await r.json();
    $("key-section").hidden = true; // the key works; the header link leads back to "/"
    $("job-state").textContent = job.state;
    $("job-state").dataset.state = job.state;
    $("title").textContent = job.filename;
    if (MER.ACTIVE_STATES.has(job.state)) {
      const bar = $("job-progress");
      bar.hidden = false;
      bar.value = job.progress.percent;
      $("summary").textContent = `${job.progress.stage}: ${job.progress.percent.toFixed(0)} %`;
      setTimeout(() => load().catch(fail), POLL_MS);
      return;
    }
    $("job-progress").hidden = true;
    if (job.state !== "succeeded") {
      const err = job.error ? `${job.error.code}: ${job.error.message}` : "no result";
      MER.showError(`The analysis ${job.state}: ${err}`);
      return;
    }
    await render(job, cfg);
  }

  function fail(err) {
    MER.showError(`Could not load the job: ${err.message}`);
  }

  $("key-apply").addEventListener("click", () => {
    MER.setKey($("api-key").value);
    load().catch(fail);
  });
  MER.setupKeyField()
    .then(load)
    .catch(fail);
})();
