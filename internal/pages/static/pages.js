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
  // Passkeys (WebAuthn). A form with data-webauthn="create" or "get"
  // carries the service's options as JSON in data-options; its button asks
  // the browser's authenticator, puts the answer (JSON, binary fields in
  // base64url, as the service reads them) into the form's "credential"
  // field, and sends the form. Without this script or without WebAuthn the
  // forms stay hidden; the other factors still work.
  var b64 = function (buf) {
    var s = "", bytes = new Uint8Array(buf);
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  var unb64 = function (s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    var bin = atob(s + "===".slice((s.length + 3) % 4)), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  };
  var binaryIDs = function (list) {
    return (list || []).map(function (c) { var o = Object.assign({}, c); o.id = unb64(c.id); return o; });
  };
  var options = function (kind, json) {
    var pk = JSON.parse(json).publicKey;
    pk.challenge = unb64(pk.challenge);
    if (kind === "create") {
      pk.user.id = unb64(pk.user.id);
      pk.excludeCredentials = binaryIDs(pk.excludeCredentials);
    } else {
      pk.allowCredentials = binaryIDs(pk.allowCredentials);
    }
    return { publicKey: pk };
  };
  var answer = function (cred) {
    var r = cred.response, out = { id: cred.id, rawId: b64(cred.rawId), type: cred.type, response: {
      clientDataJSON: b64(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = b64(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = b64(r.authenticatorData);
      out.response.signature = b64(r.signature);
      out.response.userHandle = r.userHandle ? b64(r.userHandle) : "";
    }
    return JSON.stringify(out);
  };
  if (window.PublicKeyCredential) {
    var only = document.querySelectorAll("[data-webauthn-only]");
    for (var j = 0; j < only.length; j++) { only[j].hidden = false; }
  }
  var passkeyForms = document.querySelectorAll("form[data-webauthn]");
  for (var i = 0; i < passkeyForms.length; i++) {
    (function (form) {
      if (!window.PublicKeyCredential) { return; }
      form.hidden = false;
      form.addEventListener("submit", function (ev) {
        var field = form.querySelector("input[name=credential]");
        if (field.value) { return; } // the answer is in: send it
        ev.preventDefault();
        var kind = form.getAttribute("data-webauthn"), status = form.querySelector("[role=status]");
        var ask = kind === "create" ? navigator.credentials.create(options(kind, form.getAttribute("data-options")))
          : navigator.credentials.get(options(kind, form.getAttribute("data-options")));
        ask.then(function (cred) {
          field.value = answer(cred);
          form.submit();
        }, function (err) {
          if (status) { status.textContent = "The passkey was not used (" + err.name + "). Try again, or use another factor."; }
        });
      });
    })(passkeyForms[i]);
  }
  // Put the keyboard on the first field with an error.
  var bad = document.querySelector("[aria-invalid=true]");
  if (bad) {
    bad.focus();
  }
})();
