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
# One CPU precision measurement (engine.cpu_precision) for the whole session, although the app
# tests give each test its own cache folder.
os.environ["LATENTDESK_CPU_PRECISION_FILE"] = os.path.join(_sandbox, "cpu-precision.json")
# Nor the person's home: the model library scans ~/stable-diffusion-webui, ~/ComfyUI, the
# Hugging Face cache and LATENTDESK_MODEL_PATH; an engine test that lists models must see none.
os.environ["HOME"] = os.path.join(_sandbox, "home")
os.makedirs(os.environ["HOME"], exist_ok=True)
os.environ["HF_HOME"] = os.path.join(_sandbox, "huggingface")
for _var in ("LATENTDESK_MODEL_PATH", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE"):
    os.environ.pop(_var, None)
# Nor the built-in demo model (resources/demo): a library lists only what a test lays out.
# Tests of the demo name a file (builtin_models=, or this variable) or unset it for the real one.
os.environ["LATENTDESK_DEMO_MODEL"] = ""
