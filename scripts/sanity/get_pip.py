"""Stand-in for pip's get-pip.py, which ansible-test downloads from a host this machine cannot reach.

ansible-test runs the cached script as __main__ with pip-install arguments; this bootstraps pip
with the standard library's ensurepip, then lets that pip install what was asked from the index.
"""

import ensurepip
import os
import runpy
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}

environment = dict(os.environ)
ensurepip.bootstrap()
# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; pip needs the real config (CA bundle).
os.environ.clear()
os.environ.update(environment)
sys.argv = ["pip", "install", *(arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS)]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
