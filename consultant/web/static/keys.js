// Keyboard shortcuts: j and k move through the queue and Enter opens the case; on a
// case, c claims it, r goes to the answer and n to the note; / goes to search and ?
// lists them. A key typed into a field is the field's. Without this script every
// action is a link or a button as it was.
(function () {
  "use strict";
  var ROWS = "table.queue tbody tr";
  var selected = null;  // the chosen case's link, kept across the queue's live refreshes

  function searchBox() { return document.querySelector("input[type=search], input[name=q]"); }
  function claimButton() { return document.querySelector("form[action$='/claim'] button"); }
  function field(id) { return document.getElementById(id); }

  function typingIn(target) {
    if (!target || !target.tagName) { return false; }
    var name = target.tagName.toLowerCase();
    return name === "input" || name === "textarea" || name === "select" || target.isContentEditable;
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll(ROWS)); }
  function linkOf(row) { return row.querySelector("a[href]"); }

  function mark() {
    rows().forEach(function (row) {
      var link = linkOf(row);
      row.classList.toggle("selected", !!link && link.getAttribute("href") === selected);
    });
  }

  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.findIndex(function (row) {
      var link = linkOf(row);
      return link && link.getAttribute("href") === selected;
    });
    var next = all[Math.min(all.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    selected = linkOf(next).getAttribute("href");
    mark();
    linkOf(next).focus();
  }

  function open() {
    if (!selected) { return false; }
    window.location.href = selected;
    return true;
  }

  function focus(element) {
    if (!element) { return false; }
    element.focus();
    return true;
  }

  function click(element) {
    if (!element) { return false; }
    element.click();
    return true;
  }

  function shortcuts() {
    var list = [["?", "show these shortcuts"]];
    if (searchBox()) { list.push(["/", "search"]); }
    if (rows().length) {
      list.push(["j", "next case"], ["k", "previous case"], ["Enter", "open the chosen case"]);
    }
    if (claimButton()) { list.push(["c", "claim this case"]); }
    if (field("answer-text")) { list.push(["r", "write the answer"]); }
    if (field("note-text")) { list.push(["n", "write an internal note"]); }
    return list;
  }

  function help() {
    var dialog = document.getElementById("shortcuts");
    if (dialog) { dialog.remove(); }
    dialog = document.createElement("dialog");
    dialog.id = "shortcuts";
    dialog.setAttribute("aria-label", "Keyboard shortcuts");
    var title = document.createElement("h2");
    title.textContent = "Keyboard shortcuts";
    var table = document.createElement("dl");
    shortcuts().forEach(function (pair) {
      var key = document.createElement("dt");
      var kbd = document.createElement("kbd");
      kbd.textContent = pair[0];
      key.appendChild(kbd);
      var what = document.createElement("dd");
      what.textContent = pair[1];
      table.append(key, what);
    });
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", function () { dialog.close(); });
    dialog.append(title, table, close);
    document.body.appendChild(dialog);
    dialog.showModal();
    return true;
  }

  var KEYS = {
    "?": help,
    "/": function () { return focus(searchBox()); },
    "j": function () { move(1); return rows().length > 0; },
    "k": function () { move(-1); return rows().length > 0; },
    "c": function () { return click(claimButton()); },
    "r": function () { return focus(field("answer-text")); },
    "n": function () { return focus(field("note-text")); }
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typingIn(event.target) || document.querySelector("dialog[open]")) { return; }
    if (event.key === "Enter") {
      // A focused link or button does its own thing with Enter.
      var own = event.target.closest && event.target.closest("a, button");
      if (!own && open()) { event.preventDefault(); }
      return;
    }
    var action = KEYS[event.key];
    if (action && action()) { event.preventDefault(); }
  });

  var main = document.querySelector("main");
  if (main && window.MutationObserver) { new MutationObserver(mark).observe(main, { childList: true }); }
})();
