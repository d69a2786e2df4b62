"""``python -m volguard`` runs the command-line interface."""

from volguard.cli.main import app

if __name__ == "__main__":
    app()
