"""The documentation site: `mkdocs build --strict` in the suite, offline pages, one source per text.

The build runs once per module into a temporary folder (about 10 s); the tests read what it
wrote. Every link and anchor is checked by MkDocs itself (`validation` in mkdocs.yml: a broken
one is a warning, and `--strict` makes a warning fail the build).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# attributes through which a page would make the browser fetch something
FETCHING = re.compile(r"""<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)=["'](https?:)?//""", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with `mkdocs build --strict`; fails on any warning."""
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))] == []
    return out


@functools.cache
def _docs_hook() -> Any:
    """The site's MkDocs hook module (docs/hooks/tsm_docs.py), loaded as MkDocs loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tsm_docs_hook", ROOT / "docs" / "hooks" / "tsm_docs.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def _mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # mkdocs' !ENV and the like
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    nav = _docs_hook()._nav_paths(_mkdocs_config()["nav"])
    assert "examples/example1_dp02.ipynb" in nav and "examples/example2_dp1.ipynb" in nav
    for page in nav:
        built = site / re.sub(r"\.(md|ipynb)$", ".html", page)
        assert built.is_file(), page
    # every page of docs/ is in the nav (none is left unreachable)
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages <= set(nav)


def test_nothing_is_fetched_from_the_internet(site: Path) -> None:
    config = _mkdocs_config()
    assert config["theme"]["font"] is False
    for page in [*site.rglob("*.html"), *site.rglob("*.css")]:
        text = page.read_text(encoding="utf-8", errors="replace")
        assert FETCHING.findall(text) == [], page
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page
        assert "cdnjs" not in text and "cdn.jsdelivr" not in text and "unpkg.com" not in text, page


def test_configuration_reference_lists_every_key(site: Path) -> None:
    from pydantic import BaseModel

    from tsm_core.config import RunConfig

    text = (site / "config-reference.html").read_text()
    expected = []
    for name, field in RunConfig.model_fields.items():
        expected.append(name)
        for model in [field.annotation, *getattr(field.annotation, "__args__", ())]:
            if isinstance(model, type) and issubclass(model, BaseModel):
                expected += [f"{name}.{sub}" for sub in model.model_fields]
    assert "redshift_catalog.keep_columns" in expected and "output.split_files" in expected
    missing = [key for key in expected if f"<code>{key}</code>" not in text]
    assert missing == []


def test_every_field_of_every_config_model_has_a_description() -> None:
    """Every key of every config model (each model of ``tsm_core.config``, whether a run reaches
    it or not) says what it does, so that no row of the configuration reference is blank."""
    import inspect

    from pydantic import BaseModel

    import tsm_core.config as config

    models = {m for _, m in inspect.getmembers(config, inspect.isclass) if issubclass(m, BaseModel)}
    assert {"RunConfig", "OutputConfig", "ComputeConfig", "SplitConfig"} <= {m.__name__ for m in models}
    blank = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert blank == []
    hook = _docs_hook()
    rows = [line for line in hook.config_reference().splitlines() if line.startswith("| `")]
    assert len(rows) == sum(len(m.model_fields) for m in hook._models_in_order(config.RunConfig)) > 50
    assert [row for row in rows if row.rstrip().endswith("|  |")] == []


def test_api_pages_come_from_docstrings(site: Path) -> None:
    import tsm_core
    from tsm_core.pipeline import main

    text = (site / "api.html").read_text()
    first_line = main.run.__doc__.strip().splitlines()[0]
    assert re.sub(r"\s+", " ", first_line.split("``")[0]).strip()[:40] in re.sub(r"<[^>]+>|\s+", " ", text)
    assert 'id="tsm_core.plugins.hookspecs.tsm_writers"' in text
    assert tsm_core.Writer.__name__ in text


def test_plugin_readmes_are_included_not_copied(site: Path) -> None:
    """One source per text: the pages include the plugin READMEs; no page repeats their lines."""
    readmes = [*ROOT.glob("plugins/*/README.md"), ROOT / "CONTRIBUTING.md", ROOT / "benchmarks" / "README.md"]
    pages = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    for readme in readmes:
        long_lines = [line for line in readme.read_text().splitlines() if len(line) > 60 and "|" not in line]
        assert [line for line in long_lines if line in pages] == [], readme
    operating = (site / "operating.html").read_text()
    assert "What the operator decides (the trust boundary)" in operating
    assert 'src="web-form-1280.png"' in operating  # the README's ../../docs/web-form-1280.png, as the page needs it


def test_readme_is_a_landing_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    assert readme.index("make demo") < 300 and readme.index("make test") < 300
    assert "source .venv/bin/activate" in readme and ".venv/bin/tsm" in readme and "pip install" in readme
    nav = set(_docs_hook()._nav_paths(_mkdocs_config()["nav"]))
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if target.startswith("http"):
            continue
        in_site = target.startswith("docs/") and target[len("docs/") :] in nav
        assert in_site or (ROOT / target).exists(), target


@pytest.mark.browser
def test_site_opens_offline_in_headless_chromium(site: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it with apt-get; needs root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        for name in ("index.html", "website.html", "examples/example1_dp02.html", "api.html"):
            page.goto((site / name).as_uri())
            page.wait_for_load_state("networkidle")
            assert page.title().endswith("Training Set Maker")
        # a link of the navigation leads to a page file (no web server needed)
        page.goto((site / "index.html").as_uri())
        page.click("a.md-nav__link[href$='cli.html']")
        assert page.url.endswith("/cli.html")
        assert "tsm catalogs" in page.inner_text("article")
        browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
