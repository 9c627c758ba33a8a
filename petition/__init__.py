"""petition: organisations endorse a public appeal and organisers export signed dossiers."""

from pathlib import Path

#: The repository root: templates/, static/ and alembic.ini live beside the package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
