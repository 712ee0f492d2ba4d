"""`python -m jitsec` runs the same CLI as the `jitsec` console script."""

from jitsec.cli import main

if __name__ == "__main__":
    main()
