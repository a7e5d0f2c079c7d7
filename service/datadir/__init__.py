"""Setting up a data dir: its layout and lock, the ceremonies that give it a CA, its issuers and their rotation,
the offline root, the service's own certificate, backups; read once at start and handed on as values."""
