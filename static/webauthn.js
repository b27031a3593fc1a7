// Security keys and passkeys (WebAuthn, SPEC section 14). Each <form class="webauthn">
// stays hidden until this script finds that the browser can use keys; the page's other
// forms (the authenticator-app code, ...) work without JavaScript. The button
// ".webauthn-start" asks the key, puts the browser's answer (the WebAuthn Level 3 JSON
// form) into the hidden input "credential" and submits the form.
//
// data-webauthn="create": register a key, options in the embedded
//   <script type="application/json" class="webauthn-options">;
// data-webauthn="get": sign in with a key, options embedded the same way;
// data-webauthn="passkey": options fetched from data-options-url (POST {}), which also
//   gives the challenge_id put into the hidden input of that name.
//
// A file, because the Content-Security-Policy is script-src 'self'.
"use strict";
(function () {
  var MESSAGES = {
    NotAllowedError:
      "The key did not answer, or it could not confirm it is you. twostep needs a " +
      "security key with a PIN or fingerprint: if yours has none, set a PIN with its " +
      "maker's app, or use another key. Then try again.",
    InvalidStateError: "This key is already registered to your account.",
    SecurityError:
      "Security keys work only at this service's public address. Ask your administrator.",
  };

  // The message for an error of create() or get() (InvalidStateError: only create()
  // means "already registered").
  function message(error, creating) {
    var name = (error && error.name) || "Error";
    if (MESSAGES.hasOwnProperty(name) && (name !== "InvalidStateError" || creating)) {
      return MESSAGES[name];
    }
    return "The security key did not work (" + name +
      "). Try again, or use another way to sign in.";
  }

  // --- base64url <-> bytes -----------------------------------------------------------

  function toBytes(text) {
    var base64 = String(text).replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) {
      return buffer;
    }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // --- options: JSON -> what the browser takes -----------------------------------------

  // A copy without null values (the server's JSON may hold some; the browser refuses them).
  function withoutNulls(value) {
    if (Array.isArray(value)) {
      return value.filter(function (item) {
        return item !== null;
      }).map(withoutNulls);
    }
    if (value && typeof value === "object") {
      var copy = {};
      Object.keys(value).forEach(function (key) {
        if (value[key] !== null) {
          copy[key] = withoutNulls(value[key]);
        }
      });
      return copy;
    }
    return value;
  }

  // The options themselves, also when still wrapped as {"publicKey": {...}}.
  function unwrap(options) {
    if (options && !options.challenge && options.publicKey) {
      return options.publicKey;
    }
    return options;
  }

  function decodeIds(descriptors) {
    return (descriptors || []).map(function (descriptor) {
      var copy = Object.assign({}, descriptor);
      copy.id = toBytes(descriptor.id);
      return copy;
    });
  }

  // PublicKeyCredentialCreationOptions from their JSON form.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      try {
        return PublicKeyCredential.parseCreationOptionsFromJSON(json);
      } catch (ignored) {
        // An older or stricter parser: decode by hand below.
      }
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    if (json.excludeCredentials) {
      options.excludeCredentials = decodeIds(json.excludeCredentials);
    }
    return options;
  }

  // PublicKeyCredentialRequestOptions from their JSON form.
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      try {
        return PublicKeyCredential.parseRequestOptionsFromJSON(json);
      } catch (ignored) {
        // Decode by hand below.
      }
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    if (json.allowCredentials) {
      options.allowCredentials = decodeIds(json.allowCredentials);
    }
    return options;
  }

  // --- the answer: PublicKeyCredential -> JSON -----------------------------------------

  function credentialJson(credential) {
    if (typeof credential.toJSON === "function") {
      try {
        return credential.toJSON();
      } catch (ignored) {
        // Encode by hand below.
      }
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      // RegistrationResponseJSON.
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
      if (response.getAuthenticatorData) {
        json.response.authenticatorData = toText(response.getAuthenticatorData());
      }
      if (response.getPublicKeyAlgorithm) {
        json.response.publicKeyAlgorithm = response.getPublicKeyAlgorithm();
      }
      if (response.getPublicKey && response.getPublicKey()) {
        json.response.publicKey = toText(response.getPublicKey());
      }
    } else {
      // AuthenticationResponseJSON.
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      if (response.userHandle) {
        json.response.userHandle = toText(response.userHandle);
      }
    }
    return json;
  }

  // --- the form --------------------------------------------------------------------------

  // An error whose text is shown as it is (the server's own message).
  function shown(text) {
    var error = new Error(text);
    error.name = "Shown";
    return error;
  }

  // The passkey form's options from the server; sets its challenge_id.
  async function fetchOptions(form) {
    var answer = await fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: "{}",
    });
    var body = await answer.json().catch(function () {
      return {};
    });
    if (!answer.ok) {
      throw shown(body.message || "Passkey sign-in is not available (" + answer.status +
        "). Try again, or use another way to sign in.");
    }
    var challenge = form.querySelector("input[name='challenge_id']");
    if (challenge) {
      challenge.value = body.challenge_id;
    }
    return body.public_key;
  }

  function embeddedOptions(form) {
    return JSON.parse(form.querySelector("script.webauthn-options").textContent);
  }

  async function start(form, button) {
    var kind = form.getAttribute("data-webauthn");
    var creating = kind === "create";
    var error = form.querySelector(".webauthn-error");
    button.disabled = true;
    if (error) {
      error.hidden = true;
      error.textContent = "";
    }
    try {
      var json = withoutNulls(unwrap(kind === "passkey" ? await fetchOptions(form)
        : embeddedOptions(form)));
      var credential;
      if (creating) {
        credential = await navigator.credentials.create({ publicKey: creationOptions(json) });
      } else if (kind === "passkey") {
        credential = await navigator.credentials.get({
          publicKey: requestOptions(json),
          mediation: "optional",
        });
      } else {
        credential = await navigator.credentials.get({ publicKey: requestOptions(json) });
      }
      if (!credential) {
        throw new DOMException("No credential", "NotAllowedError");
      }
      form.querySelector("input[name='credential']").value =
        JSON.stringify(credentialJson(credential));
      // The prototype's submit: a field named "submit" cannot hide it.
      HTMLFormElement.prototype.submit.call(form);
    } catch (failure) {
      button.disabled = false;
      if (error) {
        error.textContent = failure.name === "Shown" ? failure.message
          : message(failure, creating);
        error.hidden = false;
      }
    }
  }

  function setUp() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      return; // the forms stay hidden
    }
    document.querySelectorAll("form.webauthn").forEach(function (form) {
      form.hidden = false;
      form.querySelectorAll(".webauthn-start").forEach(function (button) {
        button.addEventListener("click", function () {
          start(form, button);
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
