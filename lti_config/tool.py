"""The values an LMS admin pastes into the platform, derived from the tool's public URL only."""
from __future__ import annotations

SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
)
CLAIMS = ("iss", "sub", "name", "given_name", "family_name", "email")
MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest", "LtiSubmissionReviewRequest")
TOOL_NAME = "lms_bridge: course project & expert consultations"
DESCRIPTION = ("Course project workflow (plan, report, presentation, rubric grading) and expert "
               "consultation booking for the Blended Learning Course on localizing human rights and the SDGs.")


def urls(tool_url: str) -> dict:
    base = tool_url.rstrip("/")
    return {
        "tool_url": base + "/lti/launch",
        "login_url": base + "/lti/login",
        "redirect_uri": base + "/lti/launch",
        "jwks_url": base + "/.well-known/jwks.json",
        "registration_url": base + "/lti/register",
        "deep_linking_url": base + "/lti/launch",
    }


def config_lines(tool_url: str) -> list[tuple[str, str]]:
    """Field labels as in Moodle's "Configure a tool manually" form."""
    u = urls(tool_url)
    return [
        ("Tool name", TOOL_NAME),
        ("Tool URL", u["tool_url"]),
        ("LTI version", "LTI 1.3"),
        ("Public key type", "Keyset URL"),
        ("Public keyset", u["jwks_url"]),
        ("Initiate login URL", u["login_url"]),
        ("Redirection URI(s)", u["redirect_uri"]),
        ("Supports Deep Linking (Content-Item Message)", "yes"),
        ("Content Selection URL", u["deep_linking_url"]),
        ("IMS LTI Assignment and Grade Services", "Use this service for grade sync and column management"),
        ("IMS LTI Names and Role Provisioning", "Use this service to retrieve members' information"),
        ("Share launcher's name with tool", "Always"),
        ("Share launcher's email with tool", "Always"),
        ("Dynamic registration URL", u["registration_url"]),
        ("Requested scopes", " ".join(SCOPES)),
    ]


def registration_request(tool_url: str, domain: str) -> dict:
    """The OpenID client registration body of LTI Dynamic Registration (what Moodle expects)."""
    u = urls(tool_url)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": u["login_url"],
        "redirect_uris": [u["redirect_uri"]],
        "client_name": TOOL_NAME,
        "jwks_uri": u["jwks_url"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(SCOPES),
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            "domain": domain,
            "description": DESCRIPTION,
            "target_link_uri": u["tool_url"],
            "claims": list(CLAIMS),
            "custom_parameters": {"user_tz": "$Person.address.timezone"},
            "messages": [
                {"type": "LtiResourceLinkRequest", "target_link_uri": u["tool_url"], "placements": ["ContentArea"]},
                {"type": "LtiDeepLinkingRequest", "target_link_uri": u["deep_linking_url"],
                 "label": "Add a course project activity", "placements": ["ContentArea"],
                 "supported_types": ["ltiResourceLink"]},
            ],
        },
    }
