"""`python -m smsc`: run the SMS center simulator (options: `python -m smsc --help`)."""

import sys

from smsc.cli import main

sys.exit(main())
