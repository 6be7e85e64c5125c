"""Authentication: signed, expiring bearer tokens and the one middleware every endpoint passes.

A token is a JWT (HS256, PyJWT) signed with a key that lives in the data directory
(``secrets/token-key``, created on first use, mode 0600) and never in the repository. It is
presented as ``Authorization: Bearer <token>`` or, for browsers opening a WebSocket or a launch
URL (which cannot set headers), as ``?token=<token>``. Every ``/api`` (but ``/api/health``),
``/dicomweb`` and ``/wado`` request passes :func:`auth_middleware`; a missing, malformed,
forged or expired token gets a 401 with the reason.

:class:`Principal` is what a handler learns about the caller (``request[PRINCIPAL]``); roles
and patient authorization extend :func:`authorize`, the one place that decides.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import jwt
from aiohttp import web

ALGORITHM = "HS256"
ISSUER = "voxcast"
DEFAULT_TTL_S = 12 * 3600
KEY_FILE = Path("secrets") / "token-key"
# Paths that need no token: liveness probes and the viewer's static files (no patient data).
PUBLIC_PATHS = frozenset({"/api/health"})
PROTECTED_PREFIXES = ("/api/", "/dicomweb", "/wado")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthError(Exception):
    """A request without a valid token (HTTP 401)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject and role, and when the token expires (epoch s)."""

    subject: str
    role: str
    expires_at: float


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def load_key(data_dir: Path) -> bytes:
    """The signing key of ``data_dir``, created (256 random bits, mode 0600) when missing."""
    path = data_dir / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # unique per call: two threads of one process may race here too
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


class TokenSigner:
    """Issues and verifies the tokens of one data directory."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("token signing key must be at least 128 bits")
        self._key = key

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> TokenSigner:
        return cls(load_key(data_dir))

    def issue(self, *, subject: str = "voxcast-user", role: str = "clinician",
              ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
        if not ttl_s > 0:
            raise ValueError(f"token lifetime must be > 0 s, got {ttl_s}")
        now = time.time() if now is None else now
        claims = {"iss": ISSUER, "sub": subject, "role": role, "iat": int(now),
                  "exp": int(now + ttl_s)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`AuthError` with the reason otherwise."""
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "sub", "iss"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is not valid") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"token is not valid: {exc}") from None
        return Principal(subject=str(claims["sub"]), role=str(claims.get("role", "clinician")),
                         expires_at=float(claims["exp"]))


def token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.query.get("token") or None


def needs_auth(path: str) -> bool:
    return path not in PUBLIC_PATHS and path.startswith(PROTECTED_PREFIXES)


def authorize(principal: Principal, request: web.Request) -> None:
    """The one place that decides whether ``principal`` may make ``request``. Every valid token
    may read everything today; roles and patient authorization (a later issue) go here."""


def auth_middleware(signer: TokenSigner) -> Callable[[web.Request, Handler],
                                                     Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not needs_auth(request.path):
            return await handler(request)
        try:
            token = token_of(request)
            if token is None:
                raise AuthError("a bearer token is required (Authorization: Bearer <token> or "
                                "?token=<token>); 'voxcast token' prints one")
            principal = signer.verify(token)
        except AuthError as exc:
            return web.json_response({"error": str(exc), "status": 401}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="voxcast"'})
        authorize(principal, request)
        request[PRINCIPAL] = principal
        return await handler(request)

    return middleware
