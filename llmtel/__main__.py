"""``python -m llmtel`` runs the ``llmtel`` command."""

import sys

from llmtel.cli import main

sys.exit(main())
