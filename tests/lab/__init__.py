"""Tests that drive a real JupyterLab 4.6 server (this project's CPython kernel) in headless Chromium."""
