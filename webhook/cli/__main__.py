"""`python -m webhook.cli`: the `meshswitch` command."""

import sys

from webhook.cli.main import main

sys.exit(main())
