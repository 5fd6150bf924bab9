import sys

from tradetower.cli import main

sys.exit(main())
