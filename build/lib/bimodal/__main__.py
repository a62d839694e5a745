import sys

from bimodal.cli import main

sys.exit(main())
