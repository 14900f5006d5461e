"""Outbound clients: Moodle web services and LTI Advantage services (AGS, NRPS). No Flask here."""
from lms_bridge.clients.lti_services import LtiServiceClient, LtiServiceError, service_url
from lms_bridge.clients.moodle import BatchResult, MoodleClient, MoodleError, flatten_params

__all__ = ["BatchResult", "LtiServiceClient", "LtiServiceError", "MoodleClient", "MoodleError",
           "flatten_params", "service_url"]
