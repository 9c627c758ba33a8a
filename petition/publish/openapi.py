"""The OpenAPI 3 description of the public JSON API."""

from __future__ import annotations

from typing import Any

from petition.i18n import LANGUAGES

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(base_url: str) -> dict[str, Any]:
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
    lang = {
        "name": "lang",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(LANGUAGES)},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "petition open data",
            "version": "1",
            "description": "Appeals, their counts, and the organisations that endorsed them by name. "
            "Organisations that asked not to be named appear only in counts.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/api/appeals": {
                "get": {
                    "operationId": "listAppeals",
                    "summary": "Public appeals",
                    "parameters": [lang],
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"$ref": "#/components/schemas/AppealSummary"}}, "The appeals"
                        )
                    },
                }
            },
            "/api/appeals/{slug}": {
                "get": {
                    "operationId": "getAppeal",
                    "summary": "One appeal with its counts",
                    "parameters": [slug, lang],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Appeal"}, "The appeal"),
                        "404": _json(_ERROR, "No such appeal"),
                    },
                }
            },
            "/api/appeals/{slug}/endorsements": {
                "get": {
                    "operationId": "listEndorsements",
                    "summary": "Organisations that endorsed the appeal by name, newest first",
                    "parameters": [
                        slug,
                        {
                            "name": "country",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                        },
                        {"name": "type", "in": "query", "required": False, "schema": {"type": "string"}},
                        {
                            "name": "page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1},
                        },
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/EndorsementPage"}, "A page"),
                        "400": _json(_ERROR, "A malformed filter"),
                        "404": _json(_ERROR, "No such appeal"),
                    },
                }
            },
            "/api/appeals/{slug}/deliveries": {
                "get": {
                    "operationId": "listDeliveries",
                    "summary": "Per country: when its dossier was delivered to parliamentarians, and the answers",
                    "parameters": [slug],
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}, "The deliveries"
                        ),
                        "404": _json(_ERROR, "No such appeal"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the service and its database answer",
                    "responses": {
                        "200": _json({"type": "object", "properties": {"status": {"type": "string"}}}, "Healthy"),
                        "503": _json({"type": "object", "properties": {"status": {"type": "string"}}}, "Unhealthy"),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "AppealSummary": {
                    "type": "object",
                    "required": ["slug", "title", "status"],
                    "properties": {
                        "slug": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "string", "enum": ["open", "paused", "closed"]},
                    },
                },
                "Appeal": {
                    "type": "object",
                    "required": ["slug", "title", "status", "counts"],
                    "properties": {
                        "slug": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "string", "enum": ["open", "paused", "closed"]},
                        "moderation": {"type": "string", "enum": ["pre", "post"]},
                        "counts": {
                            "type": "object",
                            "required": ["total", "by_country", "unattributed"],
                            "description": "Listed endorsements, anonymous ones included. A country's anonymous "
                            "endorsements count towards it only when there are at least "
                            "ANONYMOUS_COUNT_THRESHOLD of them (default 3); fewer are counted in "
                            "`unattributed` instead, so that a small count cannot point at anyone. "
                            "`total` is the sum of `by_country` and `unattributed`.",
                            "properties": {
                                "total": {"type": "integer", "minimum": 0},
                                "by_country": {
                                    "type": "object",
                                    "additionalProperties": {"type": "integer", "minimum": 1},
                                    "description": "ISO 3166-1 alpha-2 code: named endorsements, plus the "
                                    "anonymous ones when they reach the threshold",
                                },
                                "unattributed": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "description": "Anonymous endorsements from countries with fewer than the "
                                    'threshold, attributed to no country ("other countries")',
                                },
                            },
                        },
                    },
                },
                "Endorsement": {
                    "type": "object",
                    "required": ["organisation_name", "country", "city", "organisation_type", "website", "endorsed_at"],
                    "properties": {
                        "organisation_name": {"type": "string"},
                        "country": {"type": "string"},
                        "city": {"type": "string"},
                        "organisation_type": {"type": "string"},
                        "website": {"type": "string"},
                        "endorsed_at": {"type": "string", "format": "date-time", "nullable": True},
                        "domain_verified": {
                            "type": "string",
                            "nullable": True,
                            "description": "The organisation's proved domain (DNS TXT record or file), or null",
                        },
                        "domain_verified_at": {"type": "string", "format": "date-time", "nullable": True},
                        "domain_proof": {
                            "type": "string",
                            "enum": ["verified", "lapsed"],
                            "nullable": True,
                            "description": "lapsed: proved once, no longer found (domain_verified is then null)",
                        },
                        "transparency_register": {
                            "type": "string",
                            "nullable": True,
                            "pattern": "^[0-9]{9,12}-[0-9]{2}$",
                            "description": "The EU Transparency Register number the organisation gave (not looked up)",
                        },
                        "confirmed_by_two_officers": {
                            "type": "boolean",
                            "description": "A second officer of the organisation countersigned its public record "
                            "as it is now, by their own email",
                        },
                    },
                },
                "Delivery": {
                    "type": "object",
                    "required": ["country", "delivered_at", "offices", "answers"],
                    "properties": {
                        "country": {"type": "string"},
                        "delivered_at": {"type": "string", "format": "date-time"},
                        "offices": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Recipients of the latest delivery",
                        },
                        "dossier_sha256": {"type": "string", "description": "SHA-256 of the dossier delivered last"},
                        "answers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["author", "answered_on", "summary"],
                                "properties": {
                                    "author": {"type": "string"},
                                    "answered_on": {"type": "string", "format": "date"},
                                    "summary": {"type": "string"},
                                    "document_url": {"type": "string", "nullable": True},
                                },
                            },
                        },
                    },
                },
                "EndorsementPage": {
                    "type": "object",
                    "required": ["items", "next"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Endorsement"}},
                        "next": {"type": "string", "nullable": True},
                    },
                },
            }
        },
    }
