"""`python -m minicontainer` is the same as the `minicontainer` command."""
from .cli import main

main()
