// The queue follows the desk without a reload: when the server says something changed,
// fetch this page again and swap in its main content. Without this script the page
// works the same, as loaded.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.EventSource) { return; }
  var busy = false;
  function refresh() {
    if (busy) { return; }
    busy = true;
    // The header tells the desk this is not the coder at work: it keeps no one signed in.
    fetch(window.location.href, {
      credentials: "same-origin", cache: "no-store", headers: { "X-Live-Refresh": "1" }
    })
      .then(function (response) {
        if (response.redirected || !response.ok) { window.location.reload(); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (fresh) { main.innerHTML = fresh.innerHTML; }
      })
      .finally(function () { busy = false; });
  }
  var stream = new EventSource("/live");
  stream.addEventListener("changed", refresh);
})();
