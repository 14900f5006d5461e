"""Grade, completion, calendar and message sync with the LMS through the durable outbox."""
