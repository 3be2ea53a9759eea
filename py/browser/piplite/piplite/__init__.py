"""`piplite` as the stock JupyterLite kernel (jupyterlite-pyodide-kernel) offers it, for this kernel.

    import piplite
    await piplite.install(["ipywidgets", "some-package"], keep_going=True)

`install` takes the stock function's arguments and returns a future (awaiting it is optional, as there: the
install runs either way). It installs the way `%pip install` does in this kernel: the site's own wheels first, then
the Pyodide distribution, then a package index when the page is online and the site allows it
(`concurrent_kernel.services.packages`). When a package is in none of them, the error says how to ship it with the
site; `PiplitePyPIDisabled` catches it, as it catches the stock kernel's error when the site turns PyPI off.
"""

from __future__ import annotations

import asyncio
from typing import Any

from concurrent_kernel.services.packages import PackageNotAvailable

__version__ = "0.1.0"
__all__ = ["PiplitePyPIDisabled", "__version__", "install"]

#: The stock kernel's error for a package not shipped with a site that turned PyPI off (a ValueError there too).
PiplitePyPIDisabled = PackageNotAvailable


def install(
    requirements: str | list[str],
    keep_going: bool = False,
    deps: bool = True,
    credentials: str | None = None,
    pre: bool = False,
    index_urls: list[str] | str | None = None,
    *,
    verbose: bool | int = False,
    constraints: list[str] | None = None,
    reinstall: bool = False,
) -> asyncio.Future[None]:
    """Install packages and their dependencies, as `%pip install` does here; micropip's arguments.

    `keep_going`: report every package that cannot be installed at the end instead of stopping at the first.
    `deps`: also install the packages' dependencies. `credentials`: the `credentials` of the downloads' fetch().
    `pre`: allow pre-releases. `index_urls`: package indexes to use instead of the site's (URL or list).
    `verbose`: print what is collected and installed, as pip does. `constraints`: requirements that pin versions
    only if something needs them. `reinstall`: replace installed versions that do not satisfy the request.
    """
    from concurrent_kernel.services import packages

    urls = [index_urls] if isinstance(index_urls, str) else index_urls
    options: dict[str, Any] = {
        "keep_going": keep_going,
        "deps": deps,
        "credentials": credentials,
        "pre": pre,
        "verbose": verbose,
        "constraints": constraints,
        "reinstall": reinstall,
    }
    return asyncio.ensure_future(packages.install(requirements, index_urls=urls, **options))
