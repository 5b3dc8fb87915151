"""What every `python -m ml.<tool>` command line shares."""
import argparse

__all__ = ["argument_parser"]


def argument_parser(module: str, description: str, *, add_help: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser named `python -m <module>` whose --help shows each flag's default."""
    return argparse.ArgumentParser(prog=f"python -m {module}", add_help=add_help, description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
