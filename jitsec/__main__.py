"""`python -m jitsec` runs the same CLI as the `jitsec` console script."""

from jitsec.launcher import run

if __name__ == "__main__":
    run()
