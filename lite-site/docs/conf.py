"""Sphinx docs whose pages run code in the browser with the concurrent kernel (jupyterlite-sphinx).

Build: `npm run docs:build` (or `bash scripts/build-docs.sh`) from the repository root. A docs project of
your own needs only `pip install concurrent-kernel jupyterlite-sphinx` and the extension below.
"""

project = "concurrent-kernel in Sphinx"
extensions = ["jupyterlite_sphinx"]

# The notebooks are embedded with the notebooklite / jupyterlite directives, not rendered as pages.
jupyterlite_bind_ipynb_suffix = False
exclude_patterns = ["_build", "_contents"]
html_theme = "alabaster"


def _no_remote_css(app, pagename, templatename, context, doctree):  # type: ignore[no-untyped-def]
    """Drop stylesheets from other hosts: jupyterlite-sphinx links a Google font for its "Try it" prompt, and
    these pages, like the site, load nothing from outside (they work offline)."""
    css = context.get("css_files", [])
    context["css_files"] = [c for c in css if "://" not in str(getattr(c, "filename", c))]


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("html-page-context", _no_remote_css)
