"""The Blended Learning Course as data, and the builder that packs it into an IMS Common Cartridge 1.1."""

from content_packages.builder import build_cartridge, validate_cartridge
from content_packages.content import ContentError, load_course
from content_packages.schemas import CartridgeInvalid

__all__ = ["build_cartridge", "validate_cartridge", "load_course", "ContentError", "CartridgeInvalid"]
