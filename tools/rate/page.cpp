#include "tools/rate/page.h"

namespace iris::rate {

// Kept in one literal so that the binary serves it without files to find at run time. Plain ES2017, no
// libraries: it must run in any current browser a rater has.
const char* rate_page_html() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Iris study: which image is from a camera?</title>
<style>
  :root { --px: 256px; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: #6e6e6e;
         color: #f4f4f4; }
  header { display: flex; justify-content: space-between; align-items: center; padding: 10px 22px;
           background: #3a3a3a; }
  #progress { font-variant-numeric: tabular-nums; }
  main { max-width: 1400px; margin: 0 auto; padding: 22px; text-align: center; }
  .pair { display: flex; justify-content: center; gap: 44px; margin: 10px 0 18px; }
  .slot { width: var(--px); height: var(--px); background: #808080; display: flex; align-items: center;
          justify-content: center; outline: 1px solid #555; }
  .slot img { width: 100%; height: 100%; object-fit: contain; }
  .pixelated img { image-rendering: pixelated; }
  .cap { margin-top: 6px; color: #e0e0e0; font-size: 14px; }
  #question { font-size: 22px; margin: 6px 0 14px; }
  button { font: inherit; padding: 8px 20px; border-radius: 6px; border: 1px solid #222; background: #eee;
           color: #111; cursor: pointer; }
  .keys button { min-width: 150px; margin: 0 12px; }
  kbd { border: 1px solid #999; border-radius: 4px; padding: 0 6px; background: #fafafa; color: #111; }
  input { font: inherit; padding: 7px 10px; width: 260px; border-radius: 6px; border: 1px solid #222; }
  #error { color: #ffe0e0; background: #7a1f1f; padding: 8px 12px; border-radius: 6px; display: inline-block; }
  #error:empty { display: none; }
  .input-row { display: flex; flex-direction: column; align-items: center; margin-bottom: 6px; }
  .intro { max-width: 640px; margin: 0 auto 20px; text-align: left; }
  [hidden] { display: none !important; }
</style>
</head>
<body data-state="loading" data-trial="" data-answered="0">
<header><b>Iris &middot; image study</b><span id="progress"></span></header>
<main>
  <section id="start" hidden>
    <div class="intro">
      <p>You will see pairs of images. In each pair one image is a photograph from a camera; the other was made
         by a computer.</p>
      <p>Each pair is shown for <span id="secs">3</span> seconds, then hidden. Answer <b id="q1"></b>
         Press <kbd>&larr;</kbd> for the left image or <kbd>&rarr;</kbd> for the right one (or use the buttons),
         during or after the viewing time. Go with your first impression.</p>
    </div>
    <form id="who"><label>Your name or rater token<br><input id="rater" autocomplete="off" maxlength="64"></label>
      <button type="submit">Start</button></form>
  </section>
  <section id="trial" hidden>
    <div id="input-row" class="input-row" hidden><div class="slot" id="slot-input"></div>
      <div class="cap">low-resolution input</div></div>
    <div class="pair">
      <div><div class="slot" id="slot-left"></div><div class="cap">left</div></div>
      <div><div class="slot" id="slot-right"></div><div class="cap">right</div></div>
    </div>
    <p id="question"></p>
    <div class="keys"><button id="pick-left" type="button"><kbd>&larr;</kbd> Left</button><button id="pick-right"
      type="button">Right <kbd>&rarr;</kbd></button></div>
  </section>
  <section id="done" hidden><h2>Thank you!</h2><p>Every trial of this study is answered. You can close this
    page.</p></section>
  <p><span id="error" role="alert"></span></p>
  <p id="retry-row" hidden><button id="retry" type="button">Try again</button></p>
</main>
<script>
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  let rater = params.get("rater") || "";
  let study = null, current = null, shownAt = 0, hideTimer = 0, busy = false;
  const $ = (id) => document.getElementById(id);
  const body = document.body;

  function setState(s) {
    body.dataset.state = s;
    $("start").hidden = s !== "start";
    $("trial").hidden = !(s === "loading" || s === "viewing" || s === "question");
    $("done").hidden = s !== "done";
  }
  function showError(msg, canRetry) {
    $("error").textContent = msg;
    $("retry-row").hidden = !canRetry;
  }
  function progress(done, total) {
    body.dataset.answered = String(done);
    $("progress").textContent = done >= total ? `${total} of ${total} answered` : `Trial ${done + 1} of ${total}`;
  }
  async function api(path, options) {
    const headers = Object.assign({}, (options && options.headers) || {});
    if (token) headers["X-Iris-Token"] = token;
    const res = await fetch(path, Object.assign({}, options || {}, { headers, cache: "no-store" }));
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) {
      const err = new Error(data.error || `the server answered ${res.status}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }
  function imageUrl(trial, side) {
    const q = new URLSearchParams({ rater, trial: String(trial), side });
    if (token) q.set("token", token);
    return "/api/image?" + q.toString();
  }
  function load(url) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.alt = "";
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("an image of this trial could not be loaded"));
      img.src = url;
    });
  }
  function place(slot, img) {
    const s = $(slot);
    s.replaceChildren();
    if (img) s.appendChild(img);
  }
  function clearSlots() { ["slot-left", "slot-right", "slot-input"].forEach((s) => place(s, null)); }

  // Both images are decoded before either is shown, so the viewing time starts when the pair appears.
  async function nextTrial() {
    setState("loading");
    clearSlots();
    const t = await api("/api/next?" + new URLSearchParams({ rater }).toString());
    progress(t.answered, t.total);
    if (t.done) {
      current = null;
      body.dataset.trial = "";
      setState("done");
      return;
    }
    const sides = ["left", "right"].concat(study.show_input ? ["input"] : []);
    const imgs = await Promise.all(sides.map((s) => load(imageUrl(t.trial, s))));
    current = t;
    body.dataset.trial = String(t.trial);
    place("slot-left", imgs[0]);
    place("slot-right", imgs[1]);
    if (study.show_input) place("slot-input", imgs[2]);
    setState("viewing");
    shownAt = performance.now();
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => {
      if (body.dataset.state !== "viewing") return;
      clearSlots();
      setState("question");
    }, study.view_ms);
  }
  async function answer(choice) {
    const s = body.dataset.state;
    if (busy || !current || (s !== "viewing" && s !== "question")) return;
    busy = true;
    const ms = Math.round(performance.now() - shownAt);
    clearTimeout(hideTimer);
    try {
      await api("/api/answer", { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify({ rater, trial: current.trial, choice, response_ms: ms }) });
      current = null;
      await nextTrial();
    } catch (e) {
      current = null;
      // 409: this trial was answered already (another tab): carry on from the server's state.
      if (e.status === 409) await run(nextTrial);
      else { setState("error"); showError(e.message, true); }
    } finally {
      busy = false;
    }
  }
  async function run(step) {
    try {
      showError("", false);
      await step();
    } catch (e) {
      setState("error");
      showError(e.message, true);
    }
  }
  function begin() {
    const name = $("rater").value.trim();
    if (!name) { showError("Please give your name or rater token.", false); return; }
    rater = name;
    params.set("rater", rater);
    history.replaceState(null, "", "?" + params.toString());  // a reload continues as this rater
    if (document.activeElement) document.activeElement.blur();
    run(nextTrial);
  }
  async function init() {
    study = await api("/api/study");
    document.documentElement.style.setProperty("--px", study.display_px + "px");
    document.querySelectorAll(".slot").forEach((s) => s.classList.toggle("pixelated", study.pixelated));
    $("secs").textContent = String(study.view_ms / 1000);
    $("q1").textContent = study.question;
    $("question").textContent = study.question;
    $("input-row").hidden = !study.show_input;
    $("progress").textContent = `${study.trials} trials`;
    if (rater) await nextTrial();
    else {
      setState("start");
      $("rater").focus();
    }
  }

  $("who").addEventListener("submit", (e) => { e.preventDefault(); begin(); });
  $("pick-left").addEventListener("click", () => answer("left"));
  $("pick-right").addEventListener("click", () => answer("right"));
  $("retry").addEventListener("click", () => run(study ? nextTrial : init));
  document.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    const s = body.dataset.state;
    if (s !== "viewing" && s !== "question") return;
    e.preventDefault();
    answer(e.key === "ArrowLeft" ? "left" : "right");
  });
  run(init);
})();
</script>
</body>
</html>
)HTML";
}

}  // namespace iris::rate
