"""Command line: `concurrent-kernel [-f CONNECTION_FILE] [--backend B] [--Class.trait=value ...]`,
`concurrent-kernel install|uninstall|list`."""

from __future__ import annotations

import argparse
import sys

from ._kernelspec import BACKENDS
from ._protocol import KERNEL_DISPLAY_NAME, KERNEL_SPEC_NAME


def _is_trait_arg(arg: str) -> bool:
    key, sep, _ = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
    cls, dot, trait = key.partition(".")
    return bool(sep and dot and cls[:1].isupper() and cls.isidentifier() and trait.isidentifier())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("install", "uninstall", "list"):
        return _manage(argv)
    trait_args = [a for a in argv if _is_trait_arg(a)]
    rest = [a for a in argv if not _is_trait_arg(a)]
    parser = argparse.ArgumentParser(prog="concurrent-kernel", description="Run the concurrent IPython kernel.")
    parser.add_argument("-f", "--connection-file", dest="connection_file", default=None)
    parser.add_argument("--backend", choices=BACKENDS, default="asyncio")
    parser.add_argument("--debugger", action=argparse.BooleanOptionalAction, default=True,
                        help="offer the debugger (debug_request via debugpy); --no-debugger: no debugpy, no cost")
    args, unknown = parser.parse_known_args(rest)
    from ._app import launch

    # What is not ours is IPython's (--profile, --ipython-dir, --matplotlib, -c, ...): its app says what it rejects.
    return launch(args.connection_file, args.backend, trait_args + unknown, debugger=args.debugger)


def _manage(argv: list[str]) -> int:
    from . import _kernelspec

    parser = argparse.ArgumentParser(prog="concurrent-kernel")
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="install the kernelspec")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (the active venv)")
    where.add_argument("--prefix", default=None, help="install under this prefix")
    install.add_argument("--name", default=KERNEL_SPEC_NAME)
    install.add_argument("--display-name", default=KERNEL_DISPLAY_NAME)
    install.add_argument("--backend", choices=BACKENDS, default="asyncio")
    install.add_argument("--debugger", action=argparse.BooleanOptionalAction, default=True,
                         help="kernels of this spec offer the debugger (default) or not")
    uninstall = sub.add_parser("uninstall", help="remove a kernelspec")
    uninstall.add_argument("name", nargs="?", default=KERNEL_SPEC_NAME)
    sub.add_parser("list", help="list installed kernelspecs")
    args = parser.parse_args(argv)
    if args.command == "install":
        prefix = sys.prefix if args.sys_prefix else args.prefix
        path = _kernelspec.install(
            name=args.name, display_name=args.display_name, backend=args.backend, user=args.user, prefix=prefix,
            debugger=args.debugger,
        )
        print(f"Installed kernelspec {args.name} in {path}")
    elif args.command == "uninstall":
        try:
            _kernelspec.uninstall(args.name)
        except KeyError:
            print(f"No kernelspec named {args.name!r}", file=sys.stderr)
            return 1
        print(f"Removed kernelspec {args.name}")
    else:
        for name, path in sorted(_kernelspec.list_specs().items()):
            print(f"  {name:<24} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
