"""`python -m engine.spark decide|impact …`: the `leadops spark` commands, for spark-submit and Databricks jobs."""

import sys

from cli import cli


def main(argv: list[str] | None = None) -> None:
    cli.main(["spark", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m engine.spark")


if __name__ == "__main__":
    main()
