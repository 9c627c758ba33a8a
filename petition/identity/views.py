"""`/domain-proof/{token}`: the page where an organisation proves its website's domain.

The link comes in the thank-you email (only when the endorsement has a website). GET shows the
TXT record to publish (zone-file form) and the file alternative, and the state of the last
check; its one form's POST queues a check, which the worker makes (never this request), then
redirects back here. The token is the secret: no-store, no Referer (`token_page`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition.db import Row
from petition.endorsements.queries import get_endorsement
from petition.endorsements.states import HELD, EndorsementState, Visibility
from petition.identity import proofs
from petition.identity.checks import dns_record, file_url
from petition.identity.domains import registrable_domain
from petition.templating import page_url
from petition.tokens import ExpiredToken, InvalidToken, Purpose
from petition.web import read_form, render, services

#: The states in which the mailbox owner confirmed the endorsement and has not taken it back.
_CONFIRMED = (EndorsementState.CONFIRMED.value, EndorsementState.APPROVED.value, HELD.value)


async def _proof(request: Request) -> Row | Response:
    svc = services(request)
    try:
        claims = svc.tokens.read(
            Purpose.DOMAIN_PROOF, request.path_params["token"], max_age=svc.settings.domain_proof_max_age
        )
    except ExpiredToken:
        return render(request, "identity/expired.html", {}, status=410, token_page=True)
    except InvalidToken:
        return render(request, "confirmation/invalid.html", {}, status=400, token_page=True)
    endorsement = await get_endorsement(svc.db, endorsement_id=claims.endorsement_id)
    if endorsement is None or endorsement["token_nonce"] != claims.nonce or endorsement["state"] not in _CONFIRMED:
        return render(request, "confirmation/invalid.html", {}, status=404, token_page=True)
    if endorsement["visibility"] != Visibility.PUBLIC:
        # A record on its domain would name an organisation that asked not to be named.
        return render(request, "identity/anonymous.html", {}, status=404, token_page=True)
    domain = registrable_domain(endorsement["website"])
    if domain is None:
        return render(request, "identity/no_website.html", {}, status=404, token_page=True)
    return await proofs.open_proof(
        svc.db, endorsement_id=endorsement["id"], domain=domain, max_age=svc.settings.domain_proof_max_age
    )


async def proof_page(request: Request) -> Response:
    proof = await _proof(request)
    if isinstance(proof, Response):
        return proof
    context = {
        "proof": proof,
        "state": proof["state"],
        "record": dns_record(proof["domain"], proof["challenge"]),
        "file_url": file_url(proof["domain"], proof["challenge"]),
        "queued": proof["next_check_at"] is not None and proof["state"] == proofs.ProofState.PENDING,
        "token": request.path_params["token"],
    }
    return render(request, "identity/domain_proof.html", context, token_page=True)


async def request_check(request: Request) -> Response:
    await read_form(request)
    proof = await _proof(request)
    if isinstance(proof, Response):
        return proof
    svc = services(request)
    if await proofs.request_check(svc.db, proof=proof) is not None and svc.domain_proof_worker is not None:
        svc.domain_proof_worker.notify()
    # Post/redirect/get: the page shows the state; a reload asks for nothing more.
    return RedirectResponse(page_url(request, f"/domain-proof/{request.path_params['token']}"), status_code=303)


routes = [
    Route("/domain-proof/{token}", proof_page, methods=["GET"], name="domain_proof"),
    Route("/domain-proof/{token}", request_check, methods=["POST"], name="domain_proof_check"),
]
