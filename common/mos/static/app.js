// The rating page: calibration images first (their intended score shown), then the trials in
// this rater's order, one at a time at full size. Each rating is sent at once; the server keeps
// what is done, so a reload (or a new visit with the same rater id) continues where it stopped.
// The page only ever sees opaque image ids.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const LABELS = { 1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent" };
  const RATER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
  const buttons = Array.from(document.querySelectorAll("#scores button"));
  const state = { rater: null, queue: [], current: null, shownAt: 0, ready: false, busy: false,
                  calibration: { total: 0, done: 0 }, trials: { total: 0, done: 0 } };

  try { $("rater").value = localStorage.getItem("mos-rater") || ""; } catch (e) { /* private mode */ }

  function say(element, text) { $(element).textContent = text || ""; }

  function setReady(ready) {
    state.ready = ready;
    $("rating").dataset.ready = ready ? "1" : "0";  // lets a scripted rater wait for the image
    buttons.forEach((b) => { b.disabled = !ready; });
  }

  async function start(event) {
    event.preventDefault();
    const rater = $("rater").value.trim();
    if (!RATER.test(rater)) {
      say("welcome-message", "A rater id is 1-64 letters, digits or _ . - (starting with a letter or digit).");
      return;
    }
    $("start").disabled = true;
    try {
      const reply = await fetch("/api/session?rater=" + encodeURIComponent(rater), { cache: "no-store" });
      const session = await reply.json();
      if (!reply.ok) throw new Error(session.error || reply.statusText);
      const done = new Set(session.done);
      const calibration = session.calibration.map((c) => ({ id: c.id, score: c.score }));
      const trials = session.trials.map((id) => ({ id: id, score: null }));
      state.calibration = { total: calibration.length, done: calibration.filter((x) => done.has(x.id)).length };
      state.trials = { total: trials.length, done: trials.filter((x) => done.has(x.id)).length };
      state.queue = calibration.concat(trials).filter((x) => !done.has(x.id));
      state.rater = rater;
      try { localStorage.setItem("mos-rater", rater); } catch (e) { /* private mode */ }
      $("welcome").hidden = true;
      if (document.activeElement) document.activeElement.blur();
      next();
    } catch (error) {
      say("welcome-message", "Could not start: " + error.message);
      $("start").disabled = false;
    }
  }

  function next() {
    state.current = state.queue.shift() || null;
    if (!state.current) {
      $("rating").hidden = true;
      $("finished").hidden = false;
      return;
    }
    $("rating").hidden = false;
    const item = state.current;
    const calibrating = item.score !== null;
    const count = calibrating ? state.calibration : state.trials;
    say("progress", (calibrating ? "Calibration " : "") + (count.done + 1) + " / " + count.total);
    say("calibration-note", calibrating
      ? "This image is meant as a " + item.score + " (" + LABELS[item.score] + "). Rate it, then go on."
      : "");
    buttons.forEach((b) => b.classList.toggle("intended", calibrating && Number(b.dataset.score) === item.score));
    say("message", "");
    setReady(false);
    const image = $("image");
    image.onload = () => {
      // One image pixel per screen pixel, also on high-DPI screens.
      image.style.width = image.naturalWidth / window.devicePixelRatio + "px";
      const view = $("viewport");
      view.scrollLeft = (view.scrollWidth - view.clientWidth) / 2;
      view.scrollTop = (view.scrollHeight - view.clientHeight) / 2;
      state.shownAt = performance.now();
      setReady(true);
      if (state.queue.length) new Image().src = "/img/" + state.queue[0].id;  // preload
    };
    image.onerror = () => say("message", "The image did not load; reload the page to continue.");
    image.src = "/img/" + item.id;
  }

  async function rate(score) {
    if (!state.current || !state.ready || state.busy) return;
    state.busy = true;
    setReady(false);
    const seconds = Math.round(performance.now() - state.shownAt) / 1000;
    const body = JSON.stringify({ rater: state.rater, image: state.current.id, score: score, seconds: seconds });
    let saved = false;
    try {
      const reply = await fetch("/api/rate", { method: "POST", body: body,
                                               headers: { "Content-Type": "application/json" } });
      // 409: the server already has this rating (its reply to an earlier try was lost).
      saved = reply.ok || reply.status === 409;
      if (!saved) say("message", "Not saved: " + ((await reply.json()).error || reply.statusText));
    } catch (error) {
      say("message", "Not saved: the server did not answer. Rate again to retry.");
    }
    state.busy = false;
    if (saved) {
      (state.current.score !== null ? state.calibration : state.trials).done += 1;
      next();
    } else {
      setReady(true);
    }
  }

  $("rater-form").addEventListener("submit", start);
  buttons.forEach((b) => b.addEventListener("click", (event) => {
    event.currentTarget.blur();  // so Space/Enter cannot rate the next image by accident
    rate(Number(b.dataset.score));
  }));
  document.addEventListener("keydown", (event) => {
    if ($("rating").hidden || event.repeat || event.ctrlKey || event.altKey || event.metaKey) return;
    if (/^[1-5]$/.test(event.key)) {
      event.preventDefault();
      rate(Number(event.key));
    }
  });

  // Drag to pan an image larger than the window.
  const view = $("viewport");
  let drag = null;
  view.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, left: view.scrollLeft, top: view.scrollTop };
    view.classList.add("dragging");
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    view.scrollLeft = drag.left - (event.clientX - drag.x);
    view.scrollTop = drag.top - (event.clientY - drag.y);
  });
  window.addEventListener("pointerup", () => { drag = null; view.classList.remove("dragging"); });
})();
