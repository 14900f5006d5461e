"""LTI 1.3 login, launch, launch context and deep linking."""

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
MESSAGE_TYPES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest", "LtiSubmissionReviewRequest")
