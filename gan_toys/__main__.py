"""`python -m gan_toys` is `python -m gan_toys.train`."""
import sys

from gan_toys.train import main

sys.exit(main())
