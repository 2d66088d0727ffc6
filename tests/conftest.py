import os
import sys

# The tests import microgpt.py from the folder above, wherever pytest is started.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
