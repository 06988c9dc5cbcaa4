import sys

from imf.cli import main

sys.exit(main())
