"""An OpenID Connect relying party built on authlib (PyPI), pointed at twostep's provider
(SPEC 13): discovery, the authorization code flow through a real browser, the token
endpoint with authlib's OAuth2Session, the ID token checked by authlib against the JWKS
(signature, kid, iss, aud, exp, iat, nonce), userinfo, refresh and logout.

Usage: oidc_authlib_client.py MODE ISSUER CLIENT_ID CALLBACK_PORT
with a confidential client's secret in the environment variable OIDC_CLIENT_SECRET.

The script listens on http://127.0.0.1:CALLBACK_PORT (/callback is the redirect URI,
/loggedout the post-logout redirect URI) and prints one JSON object a line on standard
output, each with an "event":

  discovery      the provider's metadata
  authorize_url  the URL a browser must open ("url", "state", "nonce")
  callback       what reached the redirect URI ("path", "query")
  logout_url     a logout URL a browser must open ("url", "hint": "none" or "real")
  loggedout      what reached the post-logout redirect URI ("query")
  result         the mode's outcome (see each mode)
  error          something went wrong ("message"); the exit status is then 1

Standard input is a stop signal: where the script waits for a browser that should never
come back (the mode wrong_redirect), end of input or a line ends the wait.

Modes:
  confidential      client_secret_basic; the full flow, then a refresh (rotation) and a
                    reuse of the old refresh token
  confidential_post client_secret_post; the full flow
  public            no secret, PKCE S256 (token_endpoint_auth_method none)
  replay            confidential; the code exchanged twice: the second error, and whether
                    the first exchange's access and refresh tokens still work
  wrong_verifier    public with PKCE S256; the code exchanged with another verifier
  plain_pkce        public; code_challenge_method=plain at authorize: what comes back
  wrong_redirect    confidential; a redirect_uri one character off at authorize: whether
                    anything ever reaches the callback server
  none_token        confidential; the full flow, then a copy of the ID token signed
                    alg=none: refused by authlib, and by twostep's logout as id_token_hint
                    (the browser opens it); then the real hint logs out to /loggedout
"""
import base64
import json
import os
import queue
import secrets
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

# Plain HTTP to loopback: the provider and the redirect URI are on 127.0.0.1.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oidc.core import CodeIDToken, UserInfo  # noqa: E402

with warnings.catch_warnings():
    # authlib.jose is deprecated in favour of joserfc (authlib 2.0); it is still authlib's
    # own JWS/JWK code, which is what this client means to exercise.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402
    from authlib.jose import jwt as authlib_default_jwt  # noqa: E402

SCOPE = "openid profile email role"
WAIT_SECONDS = 120


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def fail(message):
    emit("error", message=message)
    sys.exit(1)


class Browser:
    """The loopback server the browser comes back to, and the stop signal on stdin."""

    def __init__(self, port):
        self.events = queue.Queue()
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                body = (
                    "<!doctype html><html><head><title>Relying party</title></head>"
                    f"<body data-page='relying-party'><p id='path'>{url.path}</p></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                # Only once the browser has its page: the script may exit right after.
                events.put(("http", url.path, parse_qs(url.query), self.path))

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

        def stdin_watch():
            sys.stdin.readline()
            events.put(("stdin",))

        threading.Thread(target=stdin_watch, daemon=True).start()

    def wait(self, path, timeout=WAIT_SECONDS):
        """The next request at `path` as (query, full path), or None when stdin said stop
        or nothing came in time."""
        while True:
            try:
                event = self.events.get(timeout=timeout)
            except queue.Empty:
                return None
            if event[0] == "stdin":
                return None
            _, got, query, full = event
            if got == "/favicon.ico":
                continue
            return got, query, full


def single(query):
    return {name: values[0] for name, values in query.items()}


class RelyingParty:
    def __init__(self, issuer, client_id, port, secret, auth_method, pkce):
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"
        self.post_logout_uri = f"http://127.0.0.1:{port}/loggedout"
        self.secret = secret
        self.auth_method = auth_method
        self.pkce = pkce
        response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
        if response.status_code != 200:
            fail(f"discovery answered {response.status_code}: {response.text[:500]}")
        self.meta = response.json()
        emit("discovery", metadata=self.meta)
        if self.meta.get("issuer") != issuer:
            fail(f"discovery names issuer {self.meta.get('issuer')!r}, not {issuer!r}")
        self.statuses = []
        self.session = self.new_session()

    def new_session(self):
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.secret,
            token_endpoint_auth_method=self.auth_method,
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256" if self.pkce else None,
        )
        # The HTTP status of every answer, for the error reports.
        session.hooks["response"].append(
            lambda response, *args, **kwargs: self.statuses.append(response.status_code)
        )
        return session

    def authorize_url(self, **extra):
        self.state = generate_token(24)
        self.nonce = generate_token(24)
        # A challenge given by hand (plain_pkce) replaces authlib's S256 one.
        self.verifier = generate_token(64) if self.pkce and "code_challenge" not in extra else None
        url, _ = self.session.create_authorization_url(
            self.meta["authorization_endpoint"],
            state=self.state,
            code_verifier=self.verifier,
            nonce=self.nonce,
            **extra,
        )
        return url

    def exchange(self, code, verifier="default"):
        """The token answer (authlib's OAuth2Token) or the OAuthError."""
        kwargs = {"code": code, "grant_type": "authorization_code"}
        verifier = self.verifier if verifier == "default" else verifier
        if verifier:
            kwargs["code_verifier"] = verifier
        try:
            return self.session.fetch_token(self.meta["token_endpoint"], **kwargs)
        except OAuthError as error:
            return error

    def refresh(self, refresh_token):
        try:
            return self.session.refresh_token(
                self.meta["token_endpoint"], refresh_token=refresh_token
            )
        except OAuthError as error:
            return error

    def key_set(self):
        response = requests.get(self.meta["jwks_uri"], timeout=10)
        response.raise_for_status()
        return response.json()

    def verify_id_token(self, id_token, access_token, jwt=None):
        """authlib's checks of an ID token: the signature with the provider's JWKS (the key
        of the header's kid, an algorithm the provider announces), then CodeIDToken's
        claims (iss, aud, exp, iat, nonce, azp, at_hash when present). The claims, or an
        exception."""
        jwks = self.key_set()
        keys = JsonWebKey.import_key_set(jwks)
        if jwt is None:
            jwt = JsonWebToken(self.meta["id_token_signing_alg_values_supported"])
        decoded = jwt.decode(id_token, keys)
        claims = CodeIDToken(
            dict(decoded),
            dict(decoded.header),
            {
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "values": [self.client_id]},
                "nonce": {"essential": True, "value": self.nonce},
            },
            {
                "nonce": self.nonce,
                "client_id": self.client_id,
                "access_token": access_token,
            },
        )
        claims.validate(leeway=120)
        return claims, decoded.header, jwks

    def userinfo(self, access_token):
        """(status, JSON or None, WWW-Authenticate) of GET userinfo with this token."""
        response = requests.get(
            self.meta["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=10,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body, response.headers.get("WWW-Authenticate")

    def sign_in(self, browser, **extra):
        """Prints the authorize URL, waits for the browser at the redirect URI; the
        callback's query."""
        url = self.authorize_url(**extra)
        emit("authorize_url", url=url, state=self.state, nonce=self.nonce)
        arrived = browser.wait("/callback")
        if arrived is None:
            fail("nothing reached the redirect URI")
        path, query, full = arrived
        query = single(query)
        emit("callback", path=path, query=query)
        if path != "/callback":
            fail(f"the browser came back at {full}, not the redirect URI")
        return query

    def signed_in(self, browser):
        """The whole flow: the callback, the state, the exchange, the ID token, userinfo."""
        query = self.sign_in(browser)
        if query.get("state") != self.state:
            fail(f"the callback's state {query.get('state')!r} is not {self.state!r}")
        if "code" not in query:
            fail(f"no code at the callback: {query}")
        token = self.exchange(query["code"])
        if isinstance(token, OAuthError):
            fail(f"the code exchange was refused: {token.error} {token.description}")
        try:
            claims, header, jwks = self.verify_id_token(token["id_token"], token["access_token"])
        except Exception as error:  # noqa: BLE001 (reported, whatever authlib raised)
            fail(f"authlib refused the ID token: {type(error).__name__}: {error}")
        status, info, _ = self.userinfo(token["access_token"])
        if status != 200:
            fail(f"userinfo answered {status}: {info}")
        return query, token, claims, header, jwks, UserInfo(info)


def token_summary(token):
    return {
        "token_type": token.get("token_type"),
        "expires_in": token.get("expires_in"),
        "scope": token.get("scope"),
        "has_access_token": bool(token.get("access_token")),
        "has_id_token": bool(token.get("id_token")),
        "has_refresh_token": bool(token.get("refresh_token")),
    }


def error_summary(error, statuses):
    return {"error": error.error, "description": error.description, "status": statuses[-1]}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_copy(id_token):
    """The same header (kid and all) and claims, with alg none and no signature."""
    header_part, payload_part, _ = id_token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    header["alg"] = "none"
    return f"{b64url(json.dumps(header).encode())}.{payload_part}."


def refusal_of(action):
    """None when `action` passed; else the exception's name and text."""
    try:
        action()
    except Exception as error:  # noqa: BLE001 (the point is which error)
        return f"{type(error).__name__}: {error}"
    return None


def main():
    if len(sys.argv) != 5:
        fail("usage: oidc_authlib_client.py MODE ISSUER CLIENT_ID CALLBACK_PORT")
    mode, issuer, client_id, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    secret = os.environ.get("OIDC_CLIENT_SECRET")
    public = mode in ("public", "wrong_verifier", "plain_pkce")
    if public:
        secret, auth_method = None, "none"
    elif mode == "confidential_post":
        auth_method = "client_secret_post"
    else:
        auth_method = "client_secret_basic"
    if not public and not secret:
        fail("a confidential client needs OIDC_CLIENT_SECRET")
    browser = Browser(port)
    rp = RelyingParty(issuer, client_id, port, secret, auth_method, pkce=public)

    if mode in ("confidential", "confidential_post", "public"):
        query, token, claims, header, jwks, info = rp.signed_in(browser)
        result = {
            "state_matches": query["state"] == rp.state,
            "kids": [key.get("kid") for key in jwks.get("keys", [])],
            "token": token_summary(token),
            "header": header,
            "claims": dict(claims),
            "userinfo": dict(info),
        }
        if mode == "confidential":
            old_refresh = token["refresh_token"]
            renewed = rp.refresh(old_refresh)
            if isinstance(renewed, OAuthError):
                fail(f"the refresh was refused: {renewed.error} {renewed.description}")
            status, body, _ = rp.userinfo(renewed["access_token"])
            reused = rp.refresh(old_refresh)
            result["refresh"] = {
                "token": token_summary(renewed),
                "rotated": renewed.get("refresh_token") not in (None, old_refresh),
                "userinfo_status": status,
                "userinfo_sub": (body or {}).get("sub"),
                "reuse": error_summary(reused, rp.statuses)
                if isinstance(reused, OAuthError)
                else {"error": None},
            }
        emit("result", **result)

    elif mode == "replay":
        query = rp.sign_in(browser)
        first = rp.exchange(query["code"])
        if isinstance(first, OAuthError):
            fail(f"the first exchange was refused: {first.error} {first.description}")
        before, _, _ = rp.userinfo(first["access_token"])
        second = rp.exchange(query["code"])
        after, _, challenge = rp.userinfo(first["access_token"])
        refreshed = rp.refresh(first["refresh_token"])
        emit(
            "result",
            first=token_summary(first),
            userinfo_before=before,
            second=error_summary(second, rp.statuses)
            if isinstance(second, OAuthError)
            else {"error": None, "token": token_summary(second)},
            userinfo_after=after,
            userinfo_after_www_authenticate=challenge,
            refresh_after=error_summary(refreshed, rp.statuses)
            if isinstance(refreshed, OAuthError)
            else {"error": None},
        )

    elif mode == "wrong_verifier":
        query = rp.sign_in(browser)
        other = generate_token(64)
        refused = rp.exchange(query["code"], verifier=other)
        emit(
            "result",
            exchange=error_summary(refused, rp.statuses)
            if isinstance(refused, OAuthError)
            else {"error": None, "token": token_summary(refused)},
        )

    elif mode == "plain_pkce":
        # authlib only makes S256 challenges: the plain one is written by hand.
        verifier = generate_token(64)
        query = rp.sign_in(
            browser, code_challenge=verifier, code_challenge_method="plain"
        )
        emit("result", query=query, state_matches=query.get("state") == rp.state)

    elif mode == "wrong_redirect":
        rp.state = generate_token(24)
        rp.nonce = generate_token(24)
        wrong = rp.redirect_uri[:-1] + ("X" if rp.redirect_uri[-1] != "X" else "Y")
        url = rp.meta["authorization_endpoint"] + "?" + urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": wrong,
                "scope": SCOPE,
                "state": rp.state,
                "nonce": rp.nonce,
            }
        )
        emit("authorize_url", url=url, state=rp.state, nonce=rp.nonce, redirect_uri=wrong)
        arrived = browser.wait("/callback")
        emit("result", callback_received=arrived is not None, arrived=arrived)

    elif mode == "none_token":
        _, token, claims, _, jwks = rp.signed_in(browser)[:5]
        forged = unsigned_copy(token["id_token"])
        # authlib, configured from discovery (RS256 only), and authlib's default JWT
        # object (every signed algorithm it knows) both refuse it.
        by_discovery = refusal_of(lambda: rp.verify_id_token(forged, token["access_token"]))
        by_default = refusal_of(
            lambda: rp.verify_id_token(forged, token["access_token"], jwt=authlib_default_jwt)
        )
        # Without a session (this script has no cookie): what twostep answers the hint.
        logout = rp.meta["end_session_endpoint"]
        forged_url = logout + "?" + urlencode(
            {
                "id_token_hint": forged,
                "post_logout_redirect_uri": rp.post_logout_uri,
                "state": generate_token(16),
            }
        )
        direct = requests.get(forged_url, allow_redirects=False, timeout=10)
        emit(
            "result",
            claims=dict(claims),
            forged_alg=json.loads(
                base64.urlsafe_b64decode(forged.split(".")[0] + "==")
            )["alg"],
            refused_by_authlib=by_discovery,
            refused_by_authlib_default_jwt=by_default,
            logout_direct_status=direct.status_code,
            logout_direct_location=direct.headers.get("Location"),
            kids=[key.get("kid") for key in jwks.get("keys", [])],
        )
        # The browser, with its session, opens the forged hint: refused (no redirect).
        emit("logout_url", url=forged_url, hint="none")
        # Then the real hint: logged out, back at the post-logout URI with the state.
        logout_state = generate_token(16)
        emit(
            "logout_url",
            url=logout
            + "?"
            + urlencode(
                {
                    "id_token_hint": token["id_token"],
                    "post_logout_redirect_uri": rp.post_logout_uri,
                    "state": logout_state,
                }
            ),
            hint="real",
            state=logout_state,
        )
        arrived = browser.wait("/loggedout")
        if arrived is None:
            fail("nothing reached the post-logout redirect URI")
        path, query, _ = arrived
        query = single(query)
        emit("loggedout", path=path, query=query, state_matches=query.get("state") == logout_state)

    else:
        fail(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
