"""`ipykernel.comm`: Comm and CommManager through this kernel's comms."""

from .comm import Comm
from .manager import CommManager

__all__ = ["Comm", "CommManager"]
