// usersvc pages: optional niceties; every page works without this file.
"use strict";
(function () {
  // The reset and verification links carry their token in the URL. The
  // form already holds it, so take it out of the address bar and the history.
  if ((location.pathname === "/reset-password" || location.pathname === "/verify-email") &&
      location.search.indexOf("token=") >= 0) {
    history.replaceState(null, "", location.pathname);
  }
  // Ask before a destructive form is sent.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });
  // Put the keyboard on the first field with an error.
  var bad = document.querySelector("[aria-invalid=true]");
  if (bad) {
    bad.focus();
  }
})();
