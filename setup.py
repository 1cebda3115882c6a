"""Packs the content kept at the repository's root (alerts/, dashboards/, runbooks/, fleet.yaml) into the wheel
as console/shipped/, so an installed gpuops builds, lints and inits with nothing outside itself (console/content.py
reads it there). The rest of the configuration is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
CONTENT = ("alerts", "dashboards", "runbooks", "fleet.yaml")


class BuildPyWithContent(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        dest = Path(self.build_lib) / "console" / "shipped"
        dest.mkdir(parents=True, exist_ok=True)
        for name in CONTENT:
            src = ROOT / name
            if src.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(src, dest / name, dirs_exist_ok=True, ignore=ignore)
            else:
                shutil.copy2(src, dest / name)


setup(cmdclass={"build_py": BuildPyWithContent})
