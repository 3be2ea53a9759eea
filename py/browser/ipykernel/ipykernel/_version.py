"""The version this stand-in says it is (pyproject.toml's): the last 6.x, which the most requirements accept."""

__version__ = "6.29.5"
version_info = (6, 29, 5)
kernel_protocol_version_info = (5, 3)
kernel_protocol_version = "5.3"
