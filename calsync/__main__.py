"""`python -m calsync` runs the command line."""

from calsync.cli import main

if __name__ == "__main__":
    main()
