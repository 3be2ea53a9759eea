"""Real notebooks compared between ipykernel and this kernel (see harness.py)."""
