# Sous's python3.11 bootstrap: the interpreter runs this file; the runtime itself lives in
# _sous_runtime.py beside it (imported, so that its bytecode is cached in __pycache__).
import _sous_runtime

_sous_runtime.main()
