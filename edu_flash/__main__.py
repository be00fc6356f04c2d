"""`python -m edu_flash` is the `edu-flash` command."""
import sys

from .cli import main

sys.exit(main())
