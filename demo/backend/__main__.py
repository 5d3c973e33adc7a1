"""`python -m demo.backend` (from the repository root) starts the server."""

from .app import main

main()
