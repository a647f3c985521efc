"""Client for Tailor, the real-time decision engine (docs/protocol.md)."""
from .client import (AsyncClient, Client, Decision, Offer, TailorError, TailorTimeout,
                     read_key_file)

__all__ = ["AsyncClient", "Client", "Decision", "Offer", "TailorError", "TailorTimeout",
           "read_key_file"]
__version__ = "0.1.0"
