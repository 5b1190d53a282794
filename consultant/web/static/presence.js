// Presence on the case page: every few seconds tell the desk this page is still open,
// and whether its coder is typing an answer, and show who else has the case open.
// Without this script the page shows who had the case open when it was loaded.
(function () {
  "use strict";
  var box = document.querySelector("[data-presence]");
  if (!box || !window.fetch) { return; }
  var answer = document.getElementById("answer-text");
  var every = Math.max(1, Number(box.getAttribute("data-beat")) || 5) * 1000;
  var typedAt = 0;
  var saidTyping = false;
  var timer = null;
  var busy = false;
  var again = false;
  var stopped = false;

  function typing() { return Date.now() - typedAt < Math.max(every, 4000); }

  function beat() {
    if (stopped) { return; }
    if (busy) { again = true; return; }
    busy = true;
    window.clearTimeout(timer);
    saidTyping = typing();
    var form = new URLSearchParams();
    form.set("csrf", box.getAttribute("data-csrf"));
    form.set("typing", saidTyping ? "1" : "0");
    // Typing an answer is the coder at work, and keeps them signed in; a page merely
    // open says so with the header, and keeps no unattended screen signed in.
    fetch(box.getAttribute("data-presence"), {
      method: "POST", body: form, credentials: "same-origin", cache: "no-store",
      redirect: "manual", headers: saidTyping ? {} : { "X-Live-Refresh": "1" }
    })
      .then(function (response) {
        if (response.type === "opaqueredirect") {
          // Signed out (idle too long, or elsewhere): the case leaves the screen.
          stopped = true;
          window.location.reload();
          return null;
        }
        if (!response.ok) { stopped = true; return null; }  // the case is gone, or a new form
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").body;
        box.innerHTML = fresh.innerHTML;
      })
      .catch(function () { /* the desk is away for a moment: try again at the next beat */ })
      .finally(function () {
        busy = false;
        if (stopped) { return; }
        if (again) { again = false; beat(); return; }
        timer = window.setTimeout(beat, every);
      });
  }

  if (answer) {
    answer.addEventListener("input", function () {
      typedAt = Date.now();
      if (!saidTyping) { beat(); }  // others see it now, not at the next beat
    });
  }
  timer = window.setTimeout(beat, every);
})();
