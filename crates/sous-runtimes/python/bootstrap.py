# Sous's python3.11 bootstrap: the interpreter runs this file; the runtime itself lives in
# _sous_runtime.py beside it (imported, so that its bytecode is cached in __pycache__).
#
# The interpreter starts without `site` (-S), so no site-packages directory of the host's
# interpreter is on sys.path: a function imports its own code, its layers' (PYTHONPATH) and
# the standard library, as on Lambda, and no host .pth file runs at each cold start.
import sys

# What `site` gives that a handler may use: exit() and quit().
import builtins

builtins.exit = builtins.quit = sys.exit

import _sous_runtime

_sous_runtime.main()
