"""The frozen program's entry point: the same as the `sd-desktop` command (sd_desktop.cli:main)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen program that starts worker processes must say so first
    from sd_desktop.cli import main

    sys.exit(main())
