"""Packaging beyond pyproject.toml: the offline site's pages go into the wheel and the egg.

Everything else (metadata, packages, package data, the `scrapy` entry point Scrapyd reads) is
in pyproject.toml. The pages live in fixtures/site/ beside their golden files; an installed
fxcrawl serves them from replay/site/ (`fxcrawl fixtures serve`, `crawl … --replay`). The
golden `*.expected.json` files are test data and stay out. scrapyd-deploy runs this file
(`python setup.py bdist_egg`) rather than write its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FIXTURE_SITE = Path(__file__).resolve().parent / "fixtures" / "site"


class build_py_with_site(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False) or not FIXTURE_SITE.is_dir():
            return  # an editable install reads fixtures/site where it is
        target = Path(self.build_lib) / "replay" / "site"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(FIXTURE_SITE, target, ignore=shutil.ignore_patterns("*.expected.json"))


setup(cmdclass={"build_py": build_py_with_site})
