"""Only the mailbox owner speaks for an organisation, for any interleaving of what others do.

The hand-written attacks of `test_mailbox_owner.py`, generalised: a hypothesis state machine
submits endorsements for a few mailboxes in many spellings (letter case, "+tag", the ß/ss
twins that are two different mailboxes), named or anonymous, from the owner's client address
or a third party's; presses Confirm on any confirmation link that reached a mailbox so far
(old ones too); withdraws with any withdrawal link from a thank-you email; and asks for a
copy of a mailbox's data. Everything goes over HTTP to the demo appeal (post-moderated:
confirmed is listed), with rate limits out of the way.

- After a confirmation, the record holds exactly the facts of the submission whose email
  carried the link, and that email and the confirmation page showed them.
- After every step, the stored records are what a model says (a record stands for its first
  submission until its mailbox confirms one; a later one only waits beside it), and the open
  data name exactly the listed public records, counting the listed ones.
- After every change of what is listed, also the CSV, the appeal page (with its chart), the
  lists of signatories and the touched countries' dossier texts: no anonymous organisation's
  name, city, website or comment, no contact's name and no mailbox's domain in any of them.
- Every email holds the texts of its own submission and of no other; a data copy holds
  nothing of another mailbox's submissions.

Every submission carries unique markers (in its name, city, website host, comment, contact
name) so that each can be looked for in every output. Not covered here: organisers'
decisions, anti-abuse holds and pre-moderated appeals.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import idna
from email_validator import validate_email
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.requests import Request

from petition.endorsements.forms import clean_line, normalise_website
from petition.i18n import country_name, translations
from petition.publish.cache import public_cache
from tests.conftest import BASE_URL
from tests.support import db_rows, links, text_body, wait_for

SLUG = "protect-deserters"

#: The owners' mailboxes. "straße" and "strasse" are two domains, so two mailboxes.
MAILBOXES = {
    "exile": "office@exile.example",
    "eszett": "info@straße.example",
    "double-s": "info@strasse.example",
    "peace": "desk@peace.example",
}

#: How anybody may spell each mailbox on the form; each reaches that mailbox and no other.
SPELLINGS = {
    "exile": (
        "office@exile.example",
        "Office@EXILE.example",
        "OFFICE+press@exile.example",
        "office+Petition@Exile.Example",
    ),
    "eszett": (
        "info@straße.example",
        "Info@STRAẞE.EXAMPLE",
        "info+x@xn--strae-oqa.example",
        "INFO+Presse@Straße.example",
    ),
    "double-s": (
        "info@strasse.example",
        "INFO@STRASSE.EXAMPLE",
        "info+x@strasse.example",
        "Info+Presse@Strasse.Example",
    ),
    "peace": ("desk@peace.example", "Desk+x@PEACE.example", "DESK@peace.EXAMPLE"),
}

#: Domains of the mailboxes (as typed and as A-labels): private, never in a public output.
MAILBOX_DOMAINS = ("exile.example", "straße.example", "xn--strae-oqa.example", "strasse.example", "peace.example")

#: What the confirmation email says about the visibility chosen (templates/email/confirm).
VISIBILITY_SENTENCES = {
    "anonymous": "Your organisation will be counted, but not named anywhere public.",
    "public": "Your organisation will be named publicly: on this site, in the open data and in the dossier "
    "for members of parliament.",
}

COUNTRIES = ("DE", "BY", "RU", "UA", "LT")
ORGANISATION_TYPES = ("peace", "human_rights", "union", "religious", "other")
NAME_PARTS = ("", "Союз", "Straße-Initiative", "e.V.", "Гурт", "Łódź Group")


def mailbox_of(address: str) -> str:
    """The mailbox an address reaches, worked out here on its own (not with the code under test):
    letter case and a "+tag" do not matter; the domain is compared as an IDNA 2008 A-label."""
    local, _, domain = address.rpartition("@")
    local = local.lower().split("+", 1)[0]
    domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").lower()
    return f"{local}@{domain}"


OWNER_OF = {mailbox_of(address): key for key, address in MAILBOXES.items()}
assert len(OWNER_OF) == len(MAILBOXES)
assert all(mailbox_of(s) == mailbox_of(MAILBOXES[key]) for key, spellings in SPELLINGS.items() for s in spellings)

_uids = itertools.count(1)


@dataclass
class Submission:
    uid: int
    owner: str  # a key of MAILBOXES: whose mailbox its email reaches
    address: str  # as typed on the form
    form: dict[str, str]
    language: str  # of the page it was submitted from, and so of its emails

    @property
    def tag(self) -> str:
        return f"{self.uid:06d}"

    @property
    def name_marker(self) -> str:
        return f"orgmark{self.tag}"

    @property
    def markers(self) -> dict[str, str]:
        """Every text of this submission that is its own, lower case (outputs are searched so)."""
        found = {"name": self.name_marker, "contact": f"personmark{self.tag}"}
        if self.form["city"]:
            found["city"] = f"citymark{self.tag}"
        if self.form["website"]:
            found["website"] = f"sitemark{self.tag}.example"
        if self.form["comment"]:
            found["comment"] = f"commentmark{self.tag}"
        return found

    def stored(self, *, withdrawn: bool = False) -> dict[str, Any]:
        """The record's columns once this submission is confirmed (or pending as the first one)."""
        return {
            "organisation_name": clean_line(self.form["organisation_name"]),
            "country": self.form["country"],
            "city": "" if withdrawn else clean_line(self.form["city"]),
            "website": "" if withdrawn else normalise_website(self.form["website"]),
            "comment": "" if withdrawn else self.form["comment"],
            "organisation_type": self.form["organisation_type"],
            "visibility": self.form["visibility"],
            "contact_email": validate_email(self.address, check_deliverability=False).normalized,
        }


@dataclass
class Record:
    """The model of one mailbox's record: the submission it stands for (whose link is its own)."""

    submission: int
    state: str  # pending | confirmed | withdrawn
    waiting: set[int] = field(default_factory=set)  # later submissions whose links are alive


@st.composite
def submissions(draw: st.DrawFn, owners: st.SearchStrategy[str]) -> tuple[str, str, dict[str, str], str, str]:
    """(owner, address as typed, form, who submits, language)."""
    owner = draw(owners)
    address = draw(st.sampled_from(SPELLINGS[owner]))
    tag = f"{next(_uids):06d}"
    website = draw(st.sampled_from(("", "{}.example", "https://{}.EXAMPLE/about", "http://www.{}.example/")))
    form = {
        "organisation_name": " ".join(
            part
            for part in (draw(st.sampled_from(NAME_PARTS)), f"OrgMark{tag}", draw(st.sampled_from(NAME_PARTS)))
            if part
        ),
        "country": draw(st.sampled_from(COUNTRIES)),
        "city": draw(st.sampled_from(("", f"CityMark{tag}", f"CityMark{tag} an der Oder"))),
        "organisation_type": draw(st.sampled_from(ORGANISATION_TYPES)),
        "website": website.format(f"SiteMark{tag}"),
        "contact_name": f"PersonMark{tag}",
        "contact_role": "",
        "contact_email": address,
        "visibility": draw(st.sampled_from(("public", "anonymous"))),
        "comment": draw(st.sampled_from(("", f"CommentMark{tag}: we stand with them"))),
    }
    return (
        owner,
        address,
        form,
        draw(st.sampled_from(("owner", "third party"))),
        draw(st.sampled_from(("en", "de", "ru"))),
    )


def message_text(message: EmailMessage) -> str:
    parts = [str(message["Subject"]), text_body(message)]
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        parts.append(str(html.get_content()))
    return "\n".join(parts).lower()


def invalidate(site: Any) -> None:
    """Drop what the site's public cache holds, so its pages show the database as it is now."""
    request = Request({"type": "http", "state": {"services": site.client.app.state.services}})
    public_cache(request).invalidate()


def dossier_text(database_url: str, country: str, *, anonymous_threshold: int) -> tuple[str, bytes]:
    """The dossier of one country as weasyprint would be given it (cover, table, running marks)
    and its canonical list, without rendering or signing the PDF (that costs seconds)."""
    from petition.appeals.queries import get_appeal
    from petition.db import Database
    from petition.dossiers.content import gather_content
    from petition.dossiers.presentation import Presentation, build_html

    async def go() -> tuple[str, bytes]:
        db = Database(database_url)
        await db.connect()
        try:
            appeal = await get_appeal(db, slug=SLUG)
            assert appeal is not None
            content = await gather_content(db, appeal=appeal, country=country, anonymous_threshold=anonymous_threshold)
        finally:
            await db.disconnect()
        html = build_html(
            content,
            Presentation(
                verification_url=f"{BASE_URL}/verify?digest={content.list_sha256}", certificate_fingerprint="00" * 32
            ),
        )
        pages = [html.cover, html.marks, *(html.table(i) for i in range(html.chunks))]
        return "\n".join(pages), content.canonical_list

    return asyncio.run(go())


def empty_tables(database_url: str) -> None:
    """What one example leaves behind, gone (one connection: a pool per statement is slow)."""
    statements = [
        "DELETE FROM endorsement_versions",
        "DELETE FROM outbox",
        "DELETE FROM audit_log",
        "DELETE FROM rate_events",
        "DELETE FROM endorsements",
    ]
    if database_url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url[len("sqlite:///") :], timeout=30)) as conn, conn:
            for statement in statements:
                conn.execute(statement)
        return
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


def test_whatever_a_mailbox_confirms_is_what_its_email_showed_and_anonymous_stays_unnamed(
    make_site, smtp, database_url
):
    limits = {
        "rate_limit_ip_burst": 10000,
        "rate_limit_ip_sustained": 10000,
        "rate_limit_email": 10000,
        "rate_limit_domain": 10000,
        "rate_limit_data_request": 10000,
        "rate_limit_export": 10000,
    }
    # One app instance for the owners, one for third parties: each with its own client address.
    sites = {"owner": make_site(ip="198.51.100.10", **limits), "third party": make_site(ip="203.0.113.66", **limits)}
    csrf = {who: site.csrf() for who, site in sites.items()}
    [appeal] = db_rows(database_url, "SELECT moderation FROM appeals WHERE slug = $1", SLUG)
    assert appeal["moderation"] == "post"

    class Mailboxes(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.submissions: dict[int, Submission] = {}
            self.records: dict[str, Record] = {}  # by owner
            self.confirm_links: list[tuple[str, int]] = []  # (link, submission) in order of arrival
            self.withdraw_links: list[tuple[str, int]] = []
            self.seen_messages = 0
            self.expected_messages = 0
            # The same database and mail server for every example: emptied here (not in an
            # `initialize` rule: those run in any order).
            wait_for(
                lambda: db_rows(database_url, "SELECT count(*) AS n FROM outbox WHERE state = 'queued'") == [{"n": 0}]
            )
            empty_tables(database_url)
            with smtp.sink.lock:
                smtp.sink.messages.clear()
            for site in sites.values():
                invalidate(site)

        @initialize(data=st.data())
        def some_organisations_endorse_first(self, data: st.DataObject) -> None:
            """Mailbox owners who endorse before anybody else does (the others are met later, maybe
            by a third party first), so later steps find records to submit beside and links to press."""
            owners = data.draw(st.lists(st.sampled_from(sorted(MAILBOXES)), unique=True, max_size=3), label="owners")
            for owner in owners:
                submitted = data.draw(submissions(st.just(owner)), label="submission")
                self.submit(
                    owner, MAILBOXES[owner], submitted[2] | {"contact_email": MAILBOXES[owner]}, "owner", submitted[4]
                )

        # --- mail ---------------------------------------------------------------------------

        def new_messages(self, count: int) -> list[EmailMessage]:
            """The next `count` emails: waited for, and no more than those (so far)."""
            self.expected_messages += count
            wait_for(lambda: len(smtp.messages) >= self.expected_messages, interval=0.01)
            with smtp.sink.lock:
                arrived = list(smtp.messages)
            assert len(arrived) == self.expected_messages, [m["Subject"] for m in arrived[self.seen_messages :]]
            fresh = arrived[self.seen_messages :]
            self.seen_messages = len(arrived)
            return fresh

        def check_holds_only(self, message: EmailMessage, own: Submission | None) -> str:
            """The email holds the texts of its own submission (if any) and of no other one."""
            owner = OWNER_OF.get(mailbox_of(str(message["To"])))
            assert owner is not None, message["To"]
            if own is not None:
                assert owner == own.owner, (message["To"], own.address)
            body = message_text(message)
            for other in self.submissions.values():
                if other is own:
                    continue
                for kind, marker in other.markers.items():
                    assert marker not in body, (
                        f"an email to {message['To']} ({message['Subject']}) holds the {kind} of submission "
                        f"{other.uid} made for {other.address} ({other.form['visibility']})"
                    )
            return body

        # --- actions ------------------------------------------------------------------------

        @rule(submitted=submissions(st.sampled_from(sorted(MAILBOXES))))
        def submit_for_any_mailbox(self, submitted: tuple[str, str, dict[str, str], str, str]) -> None:
            self.submit(*submitted)

        def unconfirmed(self) -> list[str]:
            return sorted(owner for owner, record in self.records.items() if record.state != "confirmed")

        @precondition(lambda self: self.unconfirmed())
        @rule(data=st.data())
        def submit_beside_a_record(self, data: st.DataObject) -> None:
            """Another submission for a mailbox whose record is pending or withdrawn: it waits beside it."""
            self.submit(*data.draw(submissions(st.sampled_from(self.unconfirmed())), label="submission"))

        def submit(self, owner: str, address: str, form: dict[str, str], who: str, language: str) -> None:
            submission = Submission(
                uid=int(form["contact_name"][len("PersonMark") :]),
                owner=owner,
                address=address,
                form=form,
                language=language,
            )
            self.submissions[submission.uid] = submission
            site = sites[who]
            answer = site.client.post(
                f"/appeals/{SLUG}/endorse?lang={language}",
                data={**form, "authorised": "yes", "consent": "yes", "csrf_token": csrf[who]},
                follow_redirects=False,
            )
            # The same answer whatever is known about the address.
            assert answer.status_code == 303, answer.text
            assert "/check-email" in answer.headers["location"]
            [message] = self.new_messages(1)
            record = self.records.get(owner)
            if record is not None and record.state == "confirmed":
                # Confirmed before: an "already endorsed" email, nothing stored, no link.
                event("submit: already endorsed")
                body = self.check_holds_only(message, None)
                assert mailbox_of(str(message["To"])) == mailbox_of(address)
                assert "/confirm/" not in body
                return
            body = self.check_holds_only(message, submission)
            assert submission.name_marker in body, "the confirmation email does not say what it confirms"
            # ...and says where and how: the country, and whether the organisation will be named.
            plain = text_body(message)
            assert country_name(submission.form["country"], language) in plain
            assert translations(language).gettext(VISIBILITY_SENTENCES[submission.form["visibility"]]) in plain
            [link] = [u for u in links(message, BASE_URL) if "/confirm/" in u]
            self.confirm_links.append((link, submission.uid))
            event("submit: new" if record is None else "submit: waits beside its record")
            if record is None:
                self.records[owner] = Record(submission=submission.uid, state="pending")
            else:
                record.waiting.add(submission.uid)

        def confirmable(self, uid: int) -> bool:
            """Whether the model says this submission's link confirms it now."""
            record = self.records[self.submissions[uid].owner]
            return (record.submission == uid and record.state == "pending") or (
                uid in record.waiting and record.state in ("pending", "withdrawn")
            )

        def live_links(self) -> list[tuple[str, int]]:
            return [(link, uid) for link, uid in self.confirm_links if self.confirmable(uid)]

        @precondition(lambda self: self.live_links())
        @rule(data=st.data())
        def confirm_a_live_link(self, data: st.DataObject) -> None:
            """The owner presses Confirm on a link that still confirms something: its own first
            submission's, or a later one's (a third party's, maybe: its email said what it was)."""
            live = self.live_links()
            later = [(link, uid) for link, uid in live if uid in self.records[self.submissions[uid].owner].waiting]
            if later and data.draw(st.booleans(), label="a later submission's link"):
                live = later
            self.confirm(*data.draw(st.sampled_from(live), label="live confirmation link"))

        @precondition(lambda self: self.confirm_links)
        @rule(data=st.data())
        def confirm_any_link(self, data: st.DataObject) -> None:
            """The owner presses Confirm on any link that reached its mailbox so far (maybe an old one)."""
            self.confirm(*data.draw(st.sampled_from(self.confirm_links), label="confirmation link"))

        def confirm(self, link: str, uid: int) -> None:
            submission = self.submissions[uid]
            record = self.records[submission.owner]
            confirmable = self.confirmable(uid)
            site = sites["owner"]
            path = link.replace(BASE_URL, "")
            page = site.client.get(path)
            if confirmable:
                assert page.status_code == 200, page.text
                # The page repeats what the email said, and nothing of another submission.
                shown = page.text.lower()
                assert submission.name_marker in shown
                for other in self.submissions.values():
                    if other is not submission:
                        assert other.name_marker not in shown, (uid, other.uid)
            else:
                assert page.status_code in (200, 404, 410), page.status_code
            answer = site.client.post(path, data={"csrf_token": csrf["owner"]}, follow_redirects=False)
            assert answer.status_code in (303, 404), answer.status_code
            if not confirmable:
                event("confirm: a dead link")
                assert not self.new_messages(0)
                return
            event("confirm: the first submission" if record.submission == uid else "confirm: a later submission")
            before = self.submissions[record.submission].form["country"]
            record.submission, record.state, record.waiting = uid, "confirmed", set()
            # What the mailbox confirmed is what its own email showed, no more and no less.
            rows = db_rows(
                database_url,
                "SELECT organisation_name, country, city, website, comment, "
                "organisation_type, visibility, contact_email, state FROM endorsements "
                "WHERE email_canonical = $1",
                mailbox_of(MAILBOXES[submission.owner]),
            )
            assert rows == [{**submission.stored(), "state": "confirmed"}], (uid, rows)
            [thanks] = self.new_messages(1)
            body = self.check_holds_only(thanks, submission)
            assert submission.name_marker in body
            [withdraw] = [u for u in links(thanks, BASE_URL) if "/withdraw/" in u]
            self.withdraw_links.append((withdraw, uid))
            self.listing_changed({before, submission.form["country"]})

        @precondition(lambda self: self.withdraw_links)
        @rule(data=st.data())
        def withdraw(self, data: st.DataObject) -> None:
            """The owner withdraws with the link of a thank-you email (maybe an old one)."""
            candidates = self.withdraw_links
            alive = [
                (link, uid)
                for link, uid in candidates
                if self.records[self.submissions[uid].owner].submission == uid
                and self.records[self.submissions[uid].owner].state == "confirmed"
            ]
            if alive and data.draw(st.booleans(), label="a link that still withdraws"):
                candidates = alive
            link, uid = data.draw(st.sampled_from(candidates), label="withdrawal link")
            record = self.records[self.submissions[uid].owner]
            site = sites["owner"]
            path = link.replace(BASE_URL, "")
            page = site.client.get(path)
            alive = record.submission == uid and record.state == "confirmed"
            if alive:
                assert page.status_code == 200, page.text
            answer = site.client.post(path, data={"csrf_token": csrf["owner"]}, follow_redirects=False)
            assert answer.status_code in (200, 303, 404, 410), answer.status_code
            if alive:
                assert answer.status_code == 303
                record.state = "withdrawn"
                event("withdraw")
            assert not self.new_messages(0)
            if alive:
                self.listing_changed({self.submissions[uid].form["country"]})

        @rule(owner=st.sampled_from(sorted(MAILBOXES)), data=st.data())
        def ask_for_a_copy_of_the_data(self, owner: str, data: st.DataObject) -> None:
            """Anybody asks for the data held about an address; only its mailbox gets the link, and
            the download holds nothing of another mailbox's submissions (the ß/ss twins above all)."""
            address = data.draw(st.sampled_from(SPELLINGS[owner]), label="address")
            who = data.draw(st.sampled_from(sorted(sites)), label="who asks")
            answer = sites[who].client.post(
                "/privacy/data", data={"contact_email": address, "csrf_token": csrf[who]}, follow_redirects=False
            )
            assert answer.status_code == 303, answer.text
            record = self.records.get(owner)
            if record is None:
                assert not self.new_messages(0)
                return
            event("data copy")
            [message] = self.new_messages(1)
            self.check_holds_only(message, None)
            assert OWNER_OF[mailbox_of(str(message["To"]))] == owner
            [link] = [u for u in links(message, BASE_URL) if "/privacy/data/" in u]
            download = sites["owner"].client.get(link.replace(BASE_URL, ""))
            assert download.status_code == 200, download.text
            copy = download.text.lower()
            assert self.submissions[record.submission].name_marker in copy
            for other in self.submissions.values():
                if other.owner == owner:
                    continue
                for kind, marker in other.markers.items():
                    assert marker not in copy, (
                        f"the data copy for {address} holds the {kind} of submission {other.uid} "
                        f"made for {other.address}"
                    )

        def listing_changed(self, countries: set[str]) -> None:
            """After a change of what is listed: every public page, and the touched countries' dossiers."""
            self.check_public_outputs(countries=countries)
            for country in sorted(countries):
                self.check_dossier(country)

        def check_dossier(self, country: str) -> None:
            """A country's dossier names its listed public organisations and nothing else of anyone."""
            threshold = sites["owner"].client.app.state.services.settings.anonymous_count_threshold
            html, canonical = dossier_text(database_url, country, anonymous_threshold=threshold)
            text = (html + "\n" + canonical.decode("utf-8")).lower()
            named = self.listed_public()
            for submission in self.submissions.values():
                forbidden = submission.markers
                if submission.uid in named and submission.form["country"] == country:
                    assert submission.name_marker in text, submission.uid
                    forbidden = {"contact": forbidden["contact"]}
                for kind, marker in forbidden.items():
                    assert marker not in text, (
                        f"the {country} dossier holds the {kind} of submission {submission.uid} "
                        f"({submission.form['visibility']}, {submission.form['country']}, its record "
                        f"{self.records[submission.owner]})"
                    )
            assert f"\nnamed\t{sum(1 for u in named if self.submissions[u].form['country'] == country)}\n" in text
            for domain in MAILBOX_DOMAINS:
                assert domain not in text, domain

        # --- invariants ---------------------------------------------------------------------

        def listed_public(self) -> set[int]:
            return {
                r.submission
                for r in self.records.values()
                if r.state == "confirmed" and self.submissions[r.submission].form["visibility"] == "public"
            }

        @invariant()
        def records_are_what_their_mailboxes_confirmed(self) -> None:
            rows = db_rows(
                database_url,
                "SELECT e.organisation_name, e.country, e.city, e.website, e.comment, "
                "e.organisation_type, e.visibility, e.contact_email, e.state, "
                "(SELECT count(*) FROM endorsement_versions v WHERE v.endorsement_id = e.id) "
                "AS waiting FROM endorsements e",
            )
            found = {}
            for row in rows:
                marker = re.search(r"OrgMark(\d+)", row["organisation_name"])
                assert marker is not None, row
                uid = int(marker.group(1))
                found[self.submissions[uid].owner] = {**row, "uid": uid}
            expected = {
                owner: {
                    **self.submissions[r.submission].stored(withdrawn=r.state == "withdrawn"),
                    "state": r.state,
                    "waiting": len(r.waiting),
                    "uid": r.submission,
                }
                for owner, r in self.records.items()
            }
            assert found == expected

        @invariant()
        def public_outputs_name_the_listed_public_ones_only(self) -> None:
            self.check_public_outputs()

        def check_public_outputs(self, countries: set[str] | None = None) -> None:
            """The open data and the counts after every step (a step that must not change what is
            listed shows there if it did); after a change of what is listed (`countries`: the ones it
            touched), also the CSV, the appeal page (newest names, counts, chart), the list of
            signatories and those countries' lists. ("/" redirects to the one appeal's page.)"""
            site = sites["owner"]
            invalidate(site)
            paths = [f"/api/appeals/{SLUG}", f"/api/appeals/{SLUG}/endorsements"]
            if countries is not None:
                paths += [
                    f"/appeals/{SLUG}/endorsements.csv",
                    f"/appeals/{SLUG}",
                    f"/appeals/{SLUG}/signatories",
                    *(f"/appeals/{SLUG}/signatories?country={c}" for c in sorted(countries)),
                ]
            outputs = {}
            for path in paths:
                answer = site.client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                outputs[path] = answer.text
            named = self.listed_public()
            listed = [r for r in self.records.values() if r.state == "confirmed"]
            # The open data: exactly the listed public records, with their facts as stored.
            items = json.loads(outputs[f"/api/appeals/{SLUG}/endorsements"])["items"]
            expected = sorted(
                (facts["organisation_name"], facts["city"], facts["website"], facts["country"])
                for facts in (self.submissions[u].stored() for u in named)
            )
            assert sorted((i["organisation_name"], i["city"], i["website"], i["country"]) for i in items) == expected
            if countries is not None:
                rows = list(csv.DictReader(io.StringIO(outputs[f"/appeals/{SLUG}/endorsements.csv"])))
                assert sorted(r["organisation_name"] for r in rows) == sorted(e[0] for e in expected)
            counts = json.loads(outputs[f"/api/appeals/{SLUG}"])["counts"]
            assert counts["total"] == len(listed)
            assert sum(counts["by_country"].values()) + counts["unattributed"] == len(listed)
            everything = "\n".join(outputs.values()).lower()
            for submission in self.submissions.values():
                for kind, marker in submission.markers.items():
                    if submission.uid in named and kind != "contact":
                        continue
                    if marker in everything:
                        where = [p for p, text in outputs.items() if marker in text.lower()]
                        raise AssertionError(
                            f"the {kind} of submission {submission.uid} ({submission.form['visibility']}, "
                            f"for {submission.address}, its record "
                            f"{self.records[submission.owner]}) is public in {where}"
                        )
            for domain in MAILBOX_DOMAINS:
                assert domain not in everything, domain

    run_state_machine_as_test(
        Mailboxes,
        settings=settings(
            max_examples=12,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
