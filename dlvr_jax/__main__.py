"""``python -m dlvr_jax`` runs the command-line interface, as ``dlvr-jax`` does."""

from dlvr_jax.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
