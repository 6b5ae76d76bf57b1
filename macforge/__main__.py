import sys

from macforge.cli import main

sys.exit(main())
