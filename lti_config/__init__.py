"""What an admin installs: signing keys and JWKS, platform registrations, the tool's LTI configuration."""
