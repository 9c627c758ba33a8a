"""petition: organisations endorse a public appeal and organisers export signed dossiers."""
