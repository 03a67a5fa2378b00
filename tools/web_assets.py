"""The JavaScript and CSS that the slides and the read-only site need, taken from npm, never a CDN.

nbconvert's HTML templates load reveal.js, require.js, jQuery, MathJax, the widget renderer and
Mermaid from CDNs, so exported slides go blank in a classroom without internet. This module fetches
pinned packages from the npm registry once (``npm pack``, checked against the SHA-512 pinned below,
cached under ``build/npm/``, which git ignores), unpacks the files the pages use into
``site/vendor/``, and gives nbconvert exporters whose every URL points there by a relative path.
A copy of ``site/`` works anywhere, offline, opened straight from disk.

Used by ``tools/build_slides.py`` and ``tools/build_site.py``; :func:`remote_references` is what
the tests use to prove a page loads nothing from the internet.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a fresh clone
from course_lib.config import COURSE_ROOT  # noqa: E402
from course_lib.files import atomic_path  # noqa: E402

#: Downloaded npm tarballs (git ignores build/).
NPM_CACHE = COURSE_ROOT / "build" / "npm"
#: The folder nbconvert's custom templates live in (they remove the Mermaid CDN import).
TEMPLATES_DIR = Path(__file__).resolve().parent / "nbconvert_templates"
SITE_DIR = COURSE_ROOT / "site"


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package and the files of it that the pages need.

    Attributes:
        name: the npm name, e.g. ``"reveal.js"``.
        version: the exact version (npm pins by version; the integrity pins the bytes).
        integrity: npm's ``sha512-<base64>`` of the tarball, as ``npm view NAME@VERSION dist.integrity`` says.
        folder: the folder under ``site/vendor/``.
        keep: path prefixes inside the package to unpack (everything else is left out).
    """

    name: str
    version: str
    integrity: str
    folder: str
    keep: tuple[str, ...]


PACKAGES = (
    # reveal.js 5: nbconvert 7.17's template expects the 4.x/5.x layout (dist/reveal.js as a UMD
    # module, plugin/notes/notes.js); 5.2.1 is the newest release of that layout.
    NpmPackage("reveal.js", "5.2.1",
               "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ==",
               "reveal.js", ("LICENSE", "dist/reveal.css", "dist/reveal.js", "dist/reset.css", "dist/theme/",
                             "plugin/notes/")),
    # require.js loads reveal.js in nbconvert's slides and the widget renderer in both templates.
    NpmPackage("requirejs", "2.3.8",
               "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
               "requirejs", ("require.js", "README.md")),
    # jQuery: the slides template uses it to make tall slides scroll.
    NpmPackage("jquery", "3.7.1",
               "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
               "jquery", ("LICENSE.txt", "dist/jquery.min.js")),
    # MathJax 2.7: the version nbconvert's templates are written for (MathJax.Hub API). Only the
    # TeX input, the CommonHTML output and its fonts: 4 MB instead of 63 MB.
    NpmPackage("mathjax", "2.7.9",
               "sha512-NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
               "mathjax", ("LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js",
                           "config/local/", "extensions/", "jax/input/TeX/", "jax/output/CommonHTML/",
                           "jax/element/", "fonts/HTML-CSS/TeX/woff/", "localization/en/")),
    # The renderer of saved widget state (progress bars, the dream explorer) on the read-only site;
    # html-manager 1.x renders ipywidgets 8.
    NpmPackage("@jupyter-widgets/html-manager", "1.0.15",
               "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
               "html-manager", ("dist/embed-amd.js", "dist/embed.js.LICENSE.txt", "dist/*.woff", "dist/*.woff2",
                                "dist/*.ttf", "dist/*.eot", "dist/*.svg")),
)

#: Web fonts that the widget renderer and some reveal.js themes import from Google; without them a
#: page falls back to the system's fonts, which is what a reader without internet gets anyway.
_GOOGLE_FONT_IMPORT = re.compile(rb"@import url\((?:\\?[\"'])?https://fonts\.googleapis\.com/[^)]*\);?")


#: Bump when :func:`vendor` unpacks differently, so that existing vendor folders are redone.
_TOOL_VERSION = 2


def _integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch_tarball(package: NpmPackage, *, cache: Path = NPM_CACHE) -> bytes:
    """The package's tarball: from the cache, else from the npm registry with ``npm pack``.

    Raises:
        RuntimeError: npm is missing or the registry cannot be reached (says what to do), or the
            tarball's SHA-512 differs from the pinned one.
    """
    filename = f"{package.name.lstrip('@').replace('/', '-')}-{package.version}.tgz"
    cached = cache / filename
    if cached.is_file() and _integrity_of(cached.read_bytes()) == package.integrity:
        return cached.read_bytes()
    if shutil.which("npm") is None:
        raise RuntimeError(
            f"npm is needed once to fetch {package.name}@{package.version} for offline slides. "
            "Install Node.js (it brings npm), or put the tarball at " f"{cached}."
        )
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"{package.name}@{package.version}"
    completed = subprocess.run(["npm", "pack", spec, "--pack-destination", str(cache), "--json", "--silent"],
                               capture_output=True, text=True)
    if completed.returncode != 0 or not cached.is_file():
        raise RuntimeError(
            f"`npm pack {spec}` failed (is the npm registry reachable?): "
            f"{(completed.stderr or completed.stdout).strip()[-500:]}"
        )
    data = cached.read_bytes()
    if _integrity_of(data) != package.integrity:
        cached.unlink()
        raise RuntimeError(f"{spec} from npm does not match its pinned SHA-512; refusing to use it.")
    return data


def _wanted(member: str, keep: tuple[str, ...]) -> bool:
    for prefix in keep:
        if "*" in prefix:
            folder, pattern = prefix.rsplit("/", 1)
            if member.startswith(folder + "/") and "/" not in member[len(folder) + 1:] and \
                    Path(member).match(pattern):
                return True
        elif member == prefix or (prefix.endswith("/") and member.startswith(prefix)):
            return True
    return False


def vendor(site_dir: Path = SITE_DIR) -> Path:
    """Unpack the pinned packages into ``site_dir/vendor`` (once per version); return that folder."""
    vendor_dir = site_dir / "vendor"
    stamp_path = vendor_dir / "versions.json"
    wanted = {package.name: package.version for package in PACKAGES} | {"tool": _TOOL_VERSION}
    if stamp_path.is_file() and json.loads(stamp_path.read_text()) == wanted:
        return vendor_dir
    for package in PACKAGES:
        target = vendor_dir / package.folder
        shutil.rmtree(target, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(fetch_tarball(package)), mode="r:gz") as archive:
            for member in archive.getmembers():
                inside = member.name.split("/", 1)[1] if "/" in member.name else member.name
                if not member.isfile() or not _wanted(inside, package.keep):
                    continue
                data = archive.extractfile(member).read()
                if inside.endswith((".js", ".css")):
                    data = _GOOGLE_FONT_IMPORT.sub(b"", data)
                path = target / inside
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
    with atomic_path(stamp_path) as tmp:
        tmp.write_text(json.dumps(wanted, indent=1) + "\n")
    return vendor_dir


def exporter_config(vendor_url: str) -> dict:
    """nbconvert settings that send every asset URL to the vendored copies under ``vendor_url``.

    Args:
        vendor_url: the vendor folder as seen from the page, e.g. ``"vendor"`` or ``"../vendor"``.
    """
    return {
        "require_js_url": f"{vendor_url}/requirejs/require.js",
        "jquery_url": f"{vendor_url}/jquery/dist/jquery.min.js",
        "mathjax_url": f"{vendor_url}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
        "widget_renderer_url": f"{vendor_url}/html-manager/dist/embed-amd.js",
        "jupyter_widgets_base_url": f"{vendor_url}/",
        "extra_template_basedirs": [str(TEMPLATES_DIR)],
    }


def slides_exporter(vendor_url: str = "../vendor"):
    """An nbconvert SlidesExporter whose pages load only the vendored reveal.js and friends."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(template_name="course_reveal", reveal_url_prefix=f"{vendor_url}/reveal.js",
                              reveal_theme="white", reveal_scroll=True, **exporter_config(vendor_url))
    return exporter


def html_exporter(vendor_url: str = "vendor"):
    """An nbconvert HTMLExporter (JupyterLab look) whose pages load only vendored assets."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="course_lab", **exporter_config(vendor_url))


#: Attributes and CSS through which a page loads something: <script src>, <link href>, @import,
#: url(...), and ES module imports.
_LOADS = re.compile(
    r"""<script[^>]*\ssrc\s*=\s*["']([^"']+)["']"""
    r"""|<link[^>]*\shref\s*=\s*["']([^"']+)["']"""
    r"""|@import\s+(?:url\()?\s*["']?([^"')\s;]+)"""
    r"""|\bimport\s*\(?\s*["']([^"']+)["']"""
    r"""|widgetRendererSrc\s*=\s*["']([^"']+)["']""",
    re.IGNORECASE,
)


def remote_references(html: str) -> list[str]:
    """Every script, stylesheet, font import or module a page would load from another host."""
    found = []
    for match in _LOADS.finditer(html):
        url = next(group for group in match.groups() if group is not None)
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE) and not url.startswith("file:"):
            found.append(url)
    return found
