// The desk's and the board's only script: the live pop over Server-Sent Events, the
// wrap-up countdown, and the board's live panel refresh. No library; served by the
// gateway (gateway/desk/static/).
"use strict";

function countdown() {
  const el = document.getElementById("wrapup");
  if (!el) return;
  const ended = parseFloat(el.dataset.ended), total = parseFloat(el.dataset.wrapup);
  const tick = () => {
    const left = Math.max(0, Math.ceil(total - (Date.now() / 1000 - ended)));
    el.querySelector("b").textContent = String(left);
    if (left <= 0) { el.classList.add("over"); return; }
    setTimeout(tick, 250);
  };
  tick();
}

function desk() {
  const live = document.getElementById("live");
  const source = new EventSource("/desk/events");
  source.onopen = () => { live.textContent = "实时连接正常"; live.classList.add("on"); };
  source.onerror = () => { live.textContent = "实时连接中断，正在重连"; live.classList.remove("on"); };
  source.addEventListener("card", (ev) => {
    const pop = document.getElementById("pop");
    pop.innerHTML = ev.data;
    const card = document.getElementById("card");
    if (card) { card.classList.add("fresh"); card.dataset.shownAt = String(Date.now()); }
    countdown();
  });
  countdown();
}

function board() {
  const url = document.body.dataset.refresh, panel = document.getElementById("board-live");
  if (!url || !panel) return;
  setInterval(async () => {
    try {
      const r = await fetch(url, { credentials: "same-origin" });
      if (r.ok) panel.innerHTML = await r.text();
    } catch (e) { /* the next round tries again */ }
  }, 3000);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "desk") desk();
  if (page === "board") board();
});
