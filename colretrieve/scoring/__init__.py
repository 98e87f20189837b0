"""Late-interaction scoring: MaxSim on packed ragged pages, and its float64 reference."""

from .maxsim import maxsim, maxsim_pages, maxsim_reference, pack

__all__ = ["maxsim", "maxsim_pages", "maxsim_reference", "pack"]
