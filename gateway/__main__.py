"""``python -m gateway`` runs the acme-gateway command."""

import sys

from gateway.cli import main

sys.exit(main())
