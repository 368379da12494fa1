# Sous's python3.11 bootstrap: the interpreter runs this file; the runtime itself lives in
# _sous_runtime.py beside it (imported, so that its bytecode is cached in __pycache__).
import sys

# The interpreter starts without `site` (-S): its site-packages directories, found when Sous
# detected the interpreter, are appended here as `site` would, without running the host's
# .pth files at every cold start (they can cost tens of milliseconds).
sys.path.extend(__SITE_PACKAGES__)
# What else `site` gives that a handler may use: exit() and quit().
import builtins

builtins.exit = builtins.quit = sys.exit

import _sous_runtime

_sous_runtime.main()
