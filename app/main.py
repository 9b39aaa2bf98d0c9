"""``latentdesk [--model PATH] [--output-dir DIR]``: start the desktop app."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="latentdesk", description="A desktop studio for Stable Diffusion 1.x."
    )
    parser.add_argument("--model", metavar="PATH", help="checkpoint to load at start")
    parser.add_argument("--output-dir", metavar="DIR", help="gallery folder for this session")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Before Qt loads: when the window cannot open, say why and how to fix it, instead of
    # Qt's abort with "Reinstalling the application may fix this problem".
    from app.startup_checks import EXIT_NO_WINDOW, prepare_window_system

    problem = prepare_window_system(os.environ)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_NO_WINDOW
    from PySide6.QtWidgets import QApplication

    from app.settings import default_gallery_dir, load_settings
    from app.window import MainWindow

    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    app.setApplicationName("Latentdesk")
    app.setDesktopFileName("latentdesk")
    loaded = load_settings()
    settings = loaded.settings
    gallery = Path(args.output_dir or settings.gallery_dir or default_gallery_dir())
    window = MainWindow(settings, gallery.expanduser())
    window.theme.apply()  # before show: no flash of the wrong theme
    window.show()
    if loaded.warning:
        window.show_error(loaded.warning)
    window.load_start_model(args.model)  # without --model: the last one, once the library knows
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
