"""What every `python -m ml.<tool>` command line shares."""
import argparse
import sys

__all__ = ["argument_parser", "parse_with_train_argv", "fail"]


def argument_parser(module: str, description: str, *, add_help: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser named `python -m <module>` whose --help shows each flag's default."""
    return argparse.ArgumentParser(prog=f"python -m {module}", add_help=add_help, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def parse_with_train_argv(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """The experiment script's own flags; every other flag is kept in `train_argv` and passed to ml.train."""
    args, rest = parser.parse_known_args(argv)
    args.train_argv = rest
    return args


def fail(message: str) -> None:
    """A command-line error: `error: message` on stderr and exit status 2, never a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
