// Passkeys: the browser's side of the WebAuthn ceremonies (passkeys.py is the server's).
//
// A file, not a <script> block: the Content-Security-Policy runs scripts
// from this site's own files only. Every button it drives says in data-*
// attributes where to get the options, where to send the answer, and the
// CSRF token; without JavaScript the buttons stay hidden, and every other
// page works as before.
"use strict";

// WebAuthn speaks in bytes (ArrayBuffers); JSON carries them as base64url
// text. Newer browsers convert for us (PublicKeyCredential.parse...FromJSON,
// credential.toJSON()); these two helpers do it everywhere.
function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
}

function toBase64url(buffer) {
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// The server's options (JSON) as navigator.credentials wants them.
function creationOptions(json) {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
  };
}

function requestOptions(json) {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
  };
}

// The authenticator's answer as JSON, for the server (py_webauthn reads this shape).
function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    response,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

// A JSON POST with the CSRF token in a header, as Flask-WTF reads it.
async function post(url, csrfToken, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ error: "The server's answer was not understood." }));
  if (!response.ok) throw new Error(answer.error || "Something went wrong. Please try again.");
  return answer;
}

async function ceremony(button) {
  const data = button.dataset;
  if (data.passkey === "register") {
    const options = creationOptions(JSON.parse(data.options));
    const credential = await navigator.credentials.create({ publicKey: options });
    return post(data.verify, data.csrf, credentialJSON(credential));
  }
  // Signing in: a new challenge from the server for each try.
  const options = requestOptions(await post(data.options, data.csrf, {}));
  const credential = await navigator.credentials.get({ publicKey: options });
  let verify = data.verify;
  const remember = document.getElementById("remember");
  if (remember && remember.checked) verify += (verify.includes("?") ? "&" : "?") + "remember=1";
  return post(verify, data.csrf, credentialJSON(credential));
}

function showError(message) {
  const error = document.getElementById("passkey-error");
  error.textContent = message;
  error.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const buttons = document.querySelectorAll("button[data-passkey]");
  if (buttons.length === 0) return;
  if (!window.PublicKeyCredential) {
    showError("This browser cannot use passkeys.");
    return;
  }
  for (const button of buttons) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const answer = await ceremony(button);
        window.location.assign(answer.redirect);
      } catch (error) {
        // NotAllowedError: the user closed the browser's dialog, or it timed out.
        showError(error.name === "NotAllowedError" ? "No passkey was used." : error.message);
        button.disabled = false;
      }
    });
  }
});
