// The call detail's player: a transcript line seeks the audio, the line being heard is
// marked while it plays, and the speaker buttons switch recordings at the same moment.
// No library: a few listeners on what the server rendered.
(function () {
  "use strict";
  const player = document.getElementById("player");
  const turns = Array.from(document.querySelectorAll("#turns .turn"));
  if (!player) return;
  const download = document.getElementById("download");

  function seek(seconds, play) {
    player.currentTime = seconds;
    if (play) player.play().catch(function () { /* autoplay refused: the user presses play */ });
  }

  turns.forEach(function (turn) {
    const go = function () { seek(Number(turn.dataset.start) / 1000, true); mark(); };
    turn.addEventListener("click", go);
    turn.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
  });

  let current = null;
  function mark() {
    const ms = player.currentTime * 1000;
    let hearing = null;
    for (const turn of turns) {
      if (Number(turn.dataset.start) <= ms && ms < Number(turn.dataset.end)) { hearing = turn; }
    }
    if (hearing === current) return;
    if (current) current.classList.remove("hearing");
    current = hearing;
    if (current) {
      current.classList.add("hearing");
      current.scrollIntoView({ block: "nearest" });
    }
  }
  player.addEventListener("timeupdate", mark);
  player.addEventListener("seeked", mark);

  document.querySelectorAll(".legs .leg").forEach(function (button) {
    button.addEventListener("click", function () {
      const at = player.currentTime;
      const playing = !player.paused;
      document.querySelectorAll(".legs .leg").forEach(function (b) {
        b.classList.toggle("chosen", b === button);
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
      player.src = button.dataset.src;
      if (download) download.href = button.dataset.src + "?download=1";
      player.addEventListener("loadedmetadata", function once() {
        player.removeEventListener("loadedmetadata", once);
        seek(at, playing);
      });
    });
  });

  const start = Number(player.dataset.start || 0);
  if (start > 0) {
    const open = function () { seek(start, false); mark(); };
    if (player.readyState >= 1) open(); else player.addEventListener("loadedmetadata", open, { once: true });
  }
})();
