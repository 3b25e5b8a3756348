"""`python -m gradtui`: the same as the `gradtui` command (`gradtui serve` starts each tab this way)."""

import sys

from gradtui.cli import main

sys.exit(main())
