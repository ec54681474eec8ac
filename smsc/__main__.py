"""`python -m smsc`: run the SMS center simulator (options: `python -m smsc --help`)."""

import sys

from smsc.simulator import main

sys.exit(main())
