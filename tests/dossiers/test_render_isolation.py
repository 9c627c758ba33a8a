"""The renderer fetches nothing but its own assets, even when given real markup."""

from __future__ import annotations

import subprocess
from pathlib import Path

from petition.dossiers import typesetting
from petition.dossiers.typesetting import ASSETS_DIR, asset_path, render_html
from tests.dossiers.test_dossier_pdf import Listener


def test_real_markup_that_points_outside_fetches_nothing(tmp_path: Path) -> None:
    listener = Listener()
    secret = tmp_path / "secret.txt"
    secret.write_text("do not attach me")
    html = (
        '<!doctype html><html><head><link rel="stylesheet" href="dossier.css">'
        f'<link rel="stylesheet" href="http://127.0.0.1:{listener.port}/evil.css">'
        f'<link rel="attachment" href="{secret.as_uri()}"></head><body>'
        f'<img src="http://127.0.0.1:{listener.port}/x"><img src="{secret.as_uri()}">'
        f'<a rel="attachment" href="file:///etc/passwd">x</a>'
        '<img src="data:image/png;base64,iVBORw0KGgo=">'
        f'<p style="background: url(http://127.0.0.1:{listener.port}/bg)">text</p></body></html>'
    )
    seen: list[str] = []
    fetcher = typesetting.url_fetcher()
    original = type(fetcher).fetch

    def spy(self, url, headers=None):  # type: ignore[no-untyped-def]
        seen.append(url)
        return original(self, url, headers)

    type(fetcher).fetch = spy
    try:
        # variant=None: weasyprint leaves its sRGB profile file open in PDF/A mode (fatal under -W error)
        rendered = render_html(html, variant=None)
    finally:
        type(fetcher).fetch = original
        listener.close()
    assert rendered.pages == 1
    pdf = rendered.pdf
    assert listener.connections == 0
    # Only our own stylesheet was served; everything else was asked for and refused.
    assert (ASSETS_DIR / "dossier.css").as_uri() in seen
    assert any("127.0.0.1" in url for url in seen)
    out = tmp_path / "isolated.pdf"
    out.write_bytes(pdf)
    listing = subprocess.run(["pdfdetach", "-list", str(out)], capture_output=True, text=True).stdout
    assert listing.strip() == "0 embedded files"
    assert b"do not attach me" not in pdf


def test_asset_path_serves_only_files_inside_the_assets_folder(tmp_path: Path) -> None:
    assert asset_path((ASSETS_DIR / "dossier.css").as_uri()) == ASSETS_DIR / "dossier.css"
    assert asset_path((ASSETS_DIR / ".." / "render.py").as_uri()) is None
    assert asset_path("file:///etc/passwd") is None
    assert asset_path((ASSETS_DIR / "dossier.css").as_uri().replace("file://", "file://evil.example")) is None
    assert asset_path("http://127.0.0.1:9/dossier.css") is None
    link = tmp_path / "link.css"
    link.symlink_to("/etc/passwd")
    assert asset_path(link.as_uri()) is None
