"""`python -m webhook.server`: serve the webhook (what `meshswitch serve` runs)."""

import sys

from webhook.server.serve import main

sys.exit(main())
