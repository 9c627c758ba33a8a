"""The worker's checks of a domain proof: a TXT record, or a file over HTTPS, made safely.

A check never runs in a request: the worker (petition.identity.worker) makes it. The file check
is a request to an address the organisation's DNS names, so it must not become a way to reach
the service's own network: the host name is resolved first (through the same resolvers as the
TXT lookup), every address that is not public — loopback, private, link-local, shared, reserved,
multicast — is refused, and the connection goes to the checked address, with the domain as
TLS server name (SNI) and Host. Redirects are followed only within the domain (at most
`MAX_REDIRECTS`), each hop checked the same way; the answer is read up to `MAX_BODY` bytes, each
step under a timeout. TLS is verified against the system's CA store: the certificate must name
the host. DOMAIN_PROOF_ALLOW_LOOPBACK (tests only) lets loopback addresses through and lets the
tests add their self-signed certificate; nothing else trusts a test certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from petition.identity.domains import is_within
from petition.settings import Settings

#: The TXT record's name is this label under the domain.
CHALLENGE_LABEL = "_petition-challenge"
#: The file's path on the domain's web server, followed by the challenge value.
WELL_KNOWN = "/.well-known/petition-endorsement/"
MAX_BODY = 1024
MAX_HEAD = 16 * 1024
MAX_REDIRECTS = 3
TIMEOUT = 10.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Found(enum.StrEnum):
    HOLDS = "holds"  # the value is published: the domain is proved
    ABSENT = "absent"  # a definite answer without the value
    ERROR = "error"  # no answer (a timeout, a failing server): says nothing either way


@dataclass(frozen=True)
class CheckResult:
    found: Found
    method: str | None  # "dns" or "https" when it holds
    detail: str


class Refused(Exception):
    """An address or a redirect the file check does not follow."""


class _Protocol(Exception):
    """An answer that is not HTTP/1.x as the check reads it."""


def dns_record(domain: str, challenge: str) -> str:
    """The record to publish, in zone-file form (the contract's spelling)."""
    return f'{CHALLENGE_LABEL}.{domain}. TXT "{challenge}"'


def file_url(domain: str, challenge: str) -> str:
    return f"https://{domain}{WELL_KNOWN}{challenge}"


class Checker:
    def __init__(
        self,
        settings: Settings,
        *,
        https_port: int = 443,
        test_ca: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.allow_loopback = settings.domain_proof_allow_loopback
        self.nameservers = settings.dns_nameservers
        self.https_port = https_port
        self.timeout = timeout
        if test_ca is not None and not self.allow_loopback:
            raise ValueError("a test certificate is trusted only with DOMAIN_PROOF_ALLOW_LOOPBACK (tests)")
        self._test_ca = test_ca
        self._ssl_context: ssl.SSLContext | None = None
        self._resolver: dns.asyncresolver.Resolver | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The system's CA store, host names checked (ssl's defaults): loaded at the first check,
        not when the app starts (reading the CA store was a twentieth of a test's start-up)."""
        if self._ssl_context is None:
            context = ssl.create_default_context()
            if self._test_ca is not None:
                context.load_verify_locations(cadata=self._test_ca)
            self._ssl_context = context
        return self._ssl_context

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            resolver = dns.asyncresolver.Resolver(configure=not self.nameservers)
            if self.nameservers:
                resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in self.nameservers]
            resolver.lifetime = self.timeout
            self._resolver = resolver
        return self._resolver

    async def check(self, domain: str, challenge: str, *, method: str | None = None) -> CheckResult:
        """The file first; when it does not hold (a 403 or 404 above all), the TXT record.

        `method`, how the domain was proved before: a failure to reach that one is an ERROR
        (try again later), not a proof that no longer holds.
        """
        by_file = await self.check_file(domain, challenge)
        if by_file.found is Found.HOLDS:
            return by_file
        by_dns = await self.check_dns(domain, challenge)
        detail = f"{by_file.detail}; {by_dns.detail}"
        if by_dns.found is Found.HOLDS:
            return CheckResult(Found.HOLDS, "dns", detail)
        if by_dns.found is Found.ERROR or (method == "https" and by_file.found is Found.ERROR):
            return CheckResult(Found.ERROR, None, detail)
        return CheckResult(Found.ABSENT, None, detail)

    # --- DNS ------------------------------------------------------------------------------------

    async def check_dns(self, domain: str, challenge: str) -> CheckResult:
        name = f"{CHALLENGE_LABEL}.{domain}"
        try:
            answer = await self.resolver.resolve(name, "TXT", lifetime=self.timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return CheckResult(Found.ABSENT, None, "dns: no TXT record")
        except dns.exception.DNSException as exc:
            return CheckResult(Found.ERROR, None, f"dns: no answer ({type(exc).__name__})")
        values = [b"".join(record.strings).decode("utf-8", "replace").strip() for record in answer]
        if challenge in values:
            return CheckResult(Found.HOLDS, "dns", "dns: the TXT record holds the value")
        return CheckResult(Found.ABSENT, None, "dns: the TXT record holds another value")

    # --- the file over HTTPS --------------------------------------------------------------------

    def allowed(self, address: str) -> bool:
        """Whether the file check may connect to `address`: public ones only."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            return self.allow_loopback
        return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_private)

    async def addresses(self, host: str) -> list[str]:
        """The host's public addresses; Refused when it names only others (or none)."""
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, kind, lifetime=self.timeout)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            found.extend(record.to_text() for record in answer)
        if not found:
            raise Refused("the host has no address")
        allowed = [address for address in found if self.allowed(address)]
        if not allowed:
            raise Refused("the host points at a non-public address")
        return allowed

    async def check_file(self, domain: str, challenge: str) -> CheckResult:
        host, path = domain, WELL_KNOWN + challenge
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                status, location, body = await self._get(host, path)
            except Refused as exc:
                return CheckResult(Found.ABSENT, None, f"file: refused, {exc}")
            except dns.exception.DNSException as exc:
                return CheckResult(Found.ERROR, None, f"file: no address ({type(exc).__name__})")
            except ssl.SSLCertVerificationError:
                # A definite answer: the site does not hold a valid certificate for the name.
                return CheckResult(Found.ABSENT, None, "file: the certificate is not valid for the host")
            except (OSError, TimeoutError, ssl.SSLError, _Protocol, asyncio.IncompleteReadError) as exc:
                return CheckResult(Found.ERROR, None, f"file: not reached ({type(exc).__name__})")
            if status in _REDIRECTS and location:
                try:
                    target = urlsplit(urljoin(f"https://{host}{path}", location))
                    port = target.port
                except ValueError:
                    return CheckResult(Found.ABSENT, None, "file: refused, a malformed redirect")
                if (
                    target.scheme != "https"
                    or not target.hostname
                    or not is_within(target.hostname, domain)
                    or port not in (None, self.https_port)
                ):
                    return CheckResult(Found.ABSENT, None, "file: refused, a redirect off the domain")
                host = target.hostname
                path = (target.path or "/") + (f"?{target.query}" if target.query else "")
                if not path.isascii() or any(c.isspace() or ord(c) < 32 for c in path):
                    return CheckResult(Found.ABSENT, None, "file: refused, a malformed redirect")
                continue
            if status != 200:
                return CheckResult(Found.ERROR if status >= 500 else Found.ABSENT, None, f"file: HTTP {status}")
            if body is None:
                return CheckResult(Found.ABSENT, None, f"file: larger than {MAX_BODY} bytes")
            if body.strip() == challenge.encode("ascii"):
                return CheckResult(Found.HOLDS, "https", "file: holds the value")
            return CheckResult(Found.ABSENT, None, "file: holds another value")
        return CheckResult(Found.ABSENT, None, "file: too many redirects")

    async def _get(self, host: str, path: str) -> tuple[int, str | None, bytes | None]:
        addresses = await self.addresses(host)
        failure: BaseException | None = None
        for address in addresses[:2]:
            try:
                return await asyncio.wait_for(self._fetch(address, host, path), self.timeout)
            except (OSError, TimeoutError) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def _fetch(self, address: str, host: str, path: str) -> tuple[int, str | None, bytes | None]:
        """One GET to `address` for `host` (SNI, certificate and Host): status, Location, body
        (None when it is longer than MAX_BODY)."""
        reader, writer = await asyncio.open_connection(
            address,
            self.https_port,
            ssl=self.ssl_context,
            server_hostname=host,
            ssl_handshake_timeout=self.timeout,
            limit=MAX_HEAD,
        )
        try:
            host_header = host if self.https_port == 443 else f"{host}:{self.https_port}"
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: petition-domain-proof\r\n"
                    "Accept: text/plain, */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
                ).encode("ascii")
            )
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise _Protocol("headers too long") from exc
            status, headers = _parse_head(head)
            if status in _REDIRECTS or status != 200:
                return status, headers.get("location"), b""
            if "chunked" in headers.get("transfer-encoding", "").lower():
                return status, None, await _read_chunked(reader)
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    raise _Protocol("content-length")
                if int(length) > MAX_BODY:
                    return status, None, None
                return status, None, await reader.readexactly(int(length))
            body = await reader.read(MAX_BODY + 1)
            while body and len(body) <= MAX_BODY:
                more = await reader.read(MAX_BODY + 1 - len(body))
                if not more:
                    break
                body += more
            return status, None, body if len(body) <= MAX_BODY else None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise _Protocol("status line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _Protocol("header")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes | None:
    body = b""
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _Protocol("chunk size") from exc
        if size == 0:
            return body
        if len(body) + size > MAX_BODY:
            return None
        body += await reader.readexactly(size)
        await reader.readexactly(2)
