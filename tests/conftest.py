import os

# GUI tests run without a screen; set before any QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Tiny models run fastest on one thread (threading overhead dominates), and a 2-core CI
# machine stays responsive for the GUI tests.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Tests never touch the user's real cache, config or pictures folders.
import tempfile  # noqa: E402

_sandbox = tempfile.mkdtemp(prefix="latentdesk-tests-")
for _var in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
    os.environ[_var] = os.path.join(_sandbox, _var.lower())
